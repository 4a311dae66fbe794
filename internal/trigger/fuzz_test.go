package trigger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/gust"
)

// FuzzMessageParams: any message payload becomes a JSON object of
// trigger parameters, in UTF-8, holding the subject or topic under key as
// the platform says, and the message itself: an object's members as
// they are, anything else as text (or base64) under "payload".
func FuzzMessageParams(f *testing.F) {
	for _, s := range []string{`{"a":1}`, ` {"subject":"x","b":[1,2]} `, `[1]`, `"s"`, `null`, `{}`, `{"a":`, "plain text", "\xff\xfe", `{"a":"\xff"}`, ""} {
		f.Add([]byte(s), uint8(0), "orders.new")
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8, value string) {
		// The platform's member: subject or topic (or, to check that the
		// platform's value wins, one the message has itself).
		key := []string{"subject", "topic", "payload", "encoding", "a"}[int(which)%5]
		out, err := messageParams(data, key, value)
		if err != nil {
			t.Fatalf("messageParams(%q): %v", data, err)
		}
		if !utf8.Valid(out) {
			t.Fatalf("parameters of %q are not UTF-8: %q", data, out)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil || got == nil {
			t.Fatalf("parameters of %q are not an object: %q (%v)", data, out, err)
		}
		var v string
		if json.Unmarshal(got[key], &v) != nil || v != string([]rune(value)) {
			t.Fatalf("%q is %s, want %q", key, got[key], value)
		}
		var obj map[string]json.RawMessage
		if t0 := bytes.TrimSpace(data); len(t0) > 0 && t0[0] == '{' && utf8.Valid(data) && json.Unmarshal(t0, &obj) == nil {
			for k, m := range obj {
				if k != key && !jsonEqual(got[k], m) {
					t.Fatalf("member %q of %q is %s, want %s", k, data, got[k], m)
				}
			}
			return
		}
		if key == "payload" {
			return // the platform's value wins
		}
		var p string
		if err := json.Unmarshal(got["payload"], &p); err != nil {
			t.Fatalf("payload of %q: %s (%v)", data, got["payload"], err)
		}
		if key == "encoding" {
			return
		}
		if string(got["encoding"]) == `"base64"` {
			raw, err := base64.StdEncoding.DecodeString(p)
			if err != nil || !bytes.Equal(raw, data) {
				t.Fatalf("base64 payload of %q decodes to %q (%v)", data, raw, err)
			}
		} else if p != string(data) {
			t.Fatalf("payload of %q is %q", data, p)
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

var fuzzFeeds = []string{feedAlarm, feedInterval, feedOnce}

// FuzzConfigureAlarm: any parameters of an alarm CREATE are refused with
// a feed error or give a configuration that reads back as stored and
// whose schedule is sound (see checkSchedule).
func FuzzConfigureAlarm(f *testing.F) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for _, s := range []string{
		`{"cron":"*/5 * * * *"}`, `{"cron":"0 9 * * *","timezone":"America/New_York","startDate":"2030-02-01T00:00:00Z","stopDate":1900000000000}`,
		`{"minutes":5}`, `{"minutes":"7","startDate":1893500000000}`, `{"minutes":200000000}`, `{"minutes":2147483648}`,
		`{"date":"2030-06-01T00:00:00.5Z","deleteAfterFire":"rules"}`, `{"date":1e300}`, `{"cron":"0 0 29 2 *","stopDate":"2030-01-02"}`,
		`{"cron":"* * * * * *","trigger_payload":"hi"}`, `{"timezone":"../../etc/passwd","cron":"* * * * *"}`,
	} {
		for i := range fuzzFeeds {
			f.Add(uint8(i), []byte(s), now)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte, nowMs int64) {
		var p params
		if json.Unmarshal(raw, &p) != nil {
			return
		}
		feed := fuzzFeeds[int(kind)%len(fuzzFeeds)]
		defer slowInput(t, string(raw))()
		now := time.UnixMilli(nowMs)
		c, err := configureAlarm(feed, p, nil, now)
		if err != nil {
			if gust.KindOf(err) != gust.KindInvalid {
				t.Fatalf("%s %s: not a feed error: %v", feed, raw, err)
			}
			return
		}
		stored, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%s %s: %v", feed, raw, err)
		}
		var back alarmConfig
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatalf("%s %s: stored %s does not read back: %v", feed, raw, stored, err)
		}
		s := newSchedule(&back, now)
		switch feed {
		case feedOnce:
			if !s.dateOK || !s.date.After(now) {
				t.Fatalf("once %s: date %v accepted at %v", raw, s.date, now)
			}
		case feedInterval:
			if back.Minutes <= 0 {
				t.Fatalf("interval %s: minutes %d accepted", raw, back.Minutes)
			}
		default:
			if s.cron == nil {
				t.Fatalf("alarm %s: cron %q accepted", raw, back.Cron)
			}
		}
		checkSchedule(t, s, now)
		checkSchedule(t, s, now.Add(time.Duration(nowMs%1000)*time.Hour))
	})
}

// FuzzNextAfter: whatever a stored alarm says, its next tick after t is
// after t (or there is none), and due ends with a tick after the last
// one and not after now.
func FuzzNextAfter(f *testing.F) {
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	f.Add("*/5 * * * *", "Europe/Berlin", 0, "", "", "", t0, t0, int64(3_600_000))
	f.Add("", "", 5, "", "2030-01-02T00:00:00.123456789Z", "2030-03-01", t0, t0, int64(86_400_000))
	f.Add("", "", 200000000, "", "", "", t0, t0, int64(86_400_000))
	f.Add("", "", 0, "1900000000000", "", "", t0, t0, int64(1))
	f.Add("30 2 * * *", "America/New_York", 0, "", "", "", t0, t0, int64(400*86_400_000))
	f.Add("* * * * * *", "", 0, "", "", "2030-01-01T12:05:00Z", t0, t0, int64(7_200_000))
	f.Fuzz(func(t *testing.T, cron, tz string, minutes int, date, start, stop string, createdMs, tMs, span int64) {
		jsonDate := func(s string) json.RawMessage {
			if s == "" {
				return nil
			}
			if json.Valid([]byte(s)) {
				return json.RawMessage(s)
			}
			b, _ := json.Marshal(s)
			return b
		}
		c := &alarmConfig{Cron: cron, Timezone: tz, Minutes: minutes, Date: jsonDate(date), StartDate: jsonDate(start), StopDate: jsonDate(stop)}
		defer slowInput(t, c)()
		s := newSchedule(c, time.UnixMilli(createdMs))
		at := time.UnixMilli(tMs)
		if n := s.nextAfter(at); !n.IsZero() && !n.After(at) {
			t.Fatalf("%+v: nextAfter(%v) = %v", c, at, n)
		}
		if span < 0 {
			span = -span
		}
		checkSchedule(t, s, at)
		last, now := at, at.Add(time.Duration(span%(10*365*86_400_000))*time.Millisecond)
		if due := s.due(last, now); !due.IsZero() && (!due.After(last) || due.After(now) || (!s.stop.IsZero() && due.After(s.stop))) {
			t.Fatalf("%+v: due(%v, %v) = %v", c, last, now, due)
		}
	})
}

// slowInput fails an input that takes seconds (the alarm loop would be
// stuck on it): the fuzzer has no timeout of its own to report it by.
func slowInput(t *testing.T, in any) func() {
	timer := time.AfterFunc(3*time.Second, func() { panic(fmt.Sprintf("slow input: %+v", in)) })
	return func() { timer.Stop() }
}

// checkSchedule: a few ticks from t, each after the one before.
func checkSchedule(t *testing.T, s schedule, from time.Time) {
	t.Helper()
	at := from
	for i := 0; i < 3; i++ {
		n := s.nextAfter(at)
		if n.IsZero() {
			return
		}
		if !n.After(at) {
			t.Fatalf("%+v: nextAfter(%v) = %v", s.cfg, at, n)
		}
		if !s.stop.IsZero() && n.After(s.stop) {
			t.Fatalf("%+v: tick %v after the stop date %v", s.cfg, n, s.stop)
		}
		at = n
	}
}
