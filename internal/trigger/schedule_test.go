package trigger

import (
	"fmt"
	"testing"
	"time"
)

// TestParsedCronCache: a (pattern, timezone) pair is parsed once and
// shared, an unknown zone is UTC, and the cache stays bounded.
func TestParsedCronCache(t *testing.T) {
	c1, l1 := parsedCron("*/7 * * * *", "Europe/Berlin")
	c2, l2 := parsedCron("*/7 * * * *", "Europe/Berlin")
	if c1 == nil || c1 != c2 || l1 != l2 || l1.String() != "Europe/Berlin" {
		t.Fatalf("second lookup: %p %v, first %p %v", c2, l2, c1, l1)
	}
	if c, l := parsedCron("not cron", "Nowhere/Atlantis"); c != nil || l != time.UTC {
		t.Fatalf("invalid pair: %v %v", c, l)
	}
	for i := 0; i < cronCacheSize+10; i++ {
		parsedCron(fmt.Sprintf("%d * * * *", i%60), fmt.Sprintf("Etc/GMT+%d", i/60%12))
		parsedCron("* * * * *", fmt.Sprint(i)) // distinct keys
	}
	cronCache.Lock()
	n := len(cronCache.m)
	cronCache.Unlock()
	if n > cronCacheSize {
		t.Fatalf("cache holds %d pairs, bound %d", n, cronCacheSize)
	}
	// A schedule made once computes the same ticks as the pair says.
	s := newSchedule(&alarmConfig{Cron: "0 9 * * *", Timezone: "America/New_York"}, time.Time{})
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, want := s.nextAfter(from), time.Date(2030, 1, 1, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("9:00 New York = %s, want %s", got.UTC(), want)
	}
}
