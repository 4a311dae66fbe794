package trigger

import (
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, from, want string
	}{
		{"* * * * *", "2024-01-01T10:00:00Z", "2024-01-01T10:01:00Z"},
		{"* * * * *", "2024-01-01T10:00:30Z", "2024-01-01T10:01:00Z"},
		{"* * * * * *", "2024-01-01T10:00:00Z", "2024-01-01T10:00:01Z"},
		{"*/15 * * * * *", "2024-01-01T10:00:14Z", "2024-01-01T10:00:15Z"},
		{"0 */2 * * *", "2024-01-01T09:00:00Z", "2024-01-01T10:00:00Z"},
		{"30 8 * * mon-fri", "2024-01-06T09:00:00Z", "2024-01-08T08:30:00Z"}, // Saturday -> Monday
		{"0 0 1 jan *", "2024-03-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"0 0 29 feb *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 12 * * 7", "2024-01-01T00:00:00Z", "2024-01-07T12:00:00Z"},   // 7 is Sunday
		{"0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"},   // the 13th or a Friday
		{"0 0 13 * ?", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"},   // ? is *
		{"5/20 * * * *", "2024-01-01T10:06:00Z", "2024-01-01T10:25:00Z"}, // from 5, every 20
		{"0 9-17/4 * * *", "2024-01-01T10:00:00Z", "2024-01-01T13:00:00Z"},
		{"0,30 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T10:30:00Z"},
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", tt.expr, err)
			continue
		}
		if got := c.Next(utc(tt.from)); !got.Equal(utc(tt.want)) {
			t.Errorf("%q after %s = %s, want %s", tt.expr, tt.from, got.Format(time.RFC3339), tt.want)
		}
	}
}

func TestCronTimezone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database")
	}
	c, _ := ParseCron("0 9 * * *")
	got := c.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).In(ny))
	if want := time.Date(2024, 1, 1, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("9:00 New York = %s UTC, want %s", got.UTC(), want)
	}
	// Over the spring-forward gap, 02:30 does not exist that day.
	c, _ = ParseCron("30 2 * * *")
	got = c.Next(time.Date(2024, 3, 10, 0, 0, 0, 0, ny))
	if !got.After(time.Date(2024, 3, 10, 0, 0, 0, 0, ny)) || got.Year() != 2024 {
		t.Errorf("over the DST gap: %s", got)
	}
}

func TestCronInvalid(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
		"* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * foo *",
		"1,,2 * * * *", "0 0 30 2 *", "? * * * *", "-1 * * * *", "*/61 * * * * *",
	} {
		if _, err := ParseCron(expr); err == nil {
			t.Errorf("ParseCron(%q) accepted", expr)
		}
	}
}

func FuzzCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 1-3 * jan-mar mon,fri", "0 0 29 2 *", "1-59/7 * * * * *", "? * * * *", "0 0 13 * 5"} {
		f.Add(s, int64(1_700_000_000))
	}
	f.Fuzz(func(t *testing.T, expr string, from int64) {
		c, err := ParseCron(expr)
		if err != nil {
			return
		}
		start := time.Unix(from%(1<<33), 0).UTC()
		next := c.Next(start)
		if next.IsZero() {
			return // nothing within five years (e.g. 29 February from far away)
		}
		if !next.After(start) {
			t.Fatalf("%q: Next(%s) = %s is not after", expr, start, next)
		}
		if !c.matches(next) {
			t.Fatalf("%q: Next(%s) = %s does not match", expr, start, next)
		}
	})
}

// matches reports whether t matches every field (for the fuzz target).
func (c *Cron) matches(t time.Time) bool {
	return c.second&(1<<t.Second()) != 0 && c.minute&(1<<t.Minute()) != 0 && c.hour&(1<<t.Hour()) != 0 &&
		c.month&(1<<int(t.Month())) != 0 && c.dayMatches(t)
}
