package trigger

import (
	"encoding/json"

	"github.com/gust-faas/gust/internal/store"
	"testing"
	"time"
)

// BenchmarkAlarmNextAfter is the alarm loop's work per alarm per wake-up.
func BenchmarkAlarmNextAfter(b *testing.B) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSchedule(&alarmConfig{Cron: "*/5 * * * *", Timezone: "Europe/Berlin"}, t0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if s.nextAfter(t0.Add(time.Duration(i) * time.Minute)).IsZero() {
			b.Fatal("no tick")
		}
	}
}

// BenchmarkAlarmDueCatchUp finds the tick to fire after an hour's stop of
// a per-second alarm: 3600 steps of nextAfter.
func BenchmarkAlarmDueCatchUp(b *testing.B) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSchedule(&alarmConfig{Cron: "* * * * * *", Timezone: "Europe/Berlin"}, t0)
	b.ReportAllocs()
	for b.Loop() {
		if s.due(t0, t0.Add(time.Hour)).IsZero() {
			b.Fatal("nothing due")
		}
	}
}

// BenchmarkAlarmWake is the alarm loop's work per cron alarm at each
// wake-up: the registration's schedule, then its next tick.
func BenchmarkAlarmWake(b *testing.B) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &store.Feed{Feed: feedAlarm, Created: t0.UnixMilli(),
		Config: json.RawMessage(`{"cron":"*/5 * * * *","timezone":"Europe/Berlin","payload":{}}`)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s, ok := scheduleOf(rec)
		if !ok || s.nextAfter(t0.Add(time.Duration(i)*time.Minute)).IsZero() {
			b.Fatal("no tick")
		}
	}
}
