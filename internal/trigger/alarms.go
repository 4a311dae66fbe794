package trigger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The alarms feeds (/whisk.system/alarms/alarm, interval, once): their
// parameters, checks and messages are those of OpenWhisk's alarms package.

// alarmConfig is a stored alarm. Dates keep the JSON the user gave (an
// epoch-ms number or an ISO-8601 string), so READ shows them as given.
type alarmConfig struct {
	Cron            string          `json:"cron,omitempty"`
	Timezone        string          `json:"timezone,omitempty"`
	Minutes         int             `json:"minutes,omitempty"`
	Date            json.RawMessage `json:"date,omitempty"`
	StartDate       json.RawMessage `json:"startDate,omitempty"`
	StopDate        json.RawMessage `json:"stopDate,omitempty"`
	Payload         json.RawMessage `json:"payload"`
	DeleteAfterFire string          `json:"deleteAfterFire,omitempty"`
}

// Alarm feed names.
const (
	feedAlarm    = "alarms/alarm"
	feedInterval = "alarms/interval"
	feedOnce     = "alarms/once"
)

// configureAlarm validates the parameters of a CREATE (old nil) or an
// UPDATE of an alarm of kind feed and returns the configuration to store.
func configureAlarm(feed string, p params, old *alarmConfig, now time.Time) (*alarmConfig, error) {
	c := &alarmConfig{Payload: json.RawMessage("{}")}
	if old != nil {
		cp := *old
		c = &cp
	}
	changed := false
	if raw, ok := p["trigger_payload"]; ok {
		payload, err := constructPayload(raw)
		if err != nil {
			return nil, err
		}
		c.Payload, changed = payload, true
	}
	switch feed {
	case feedOnce:
		if raw, ok := p["date"]; ok {
			if _, err := checkDate(raw, "date", nil, now); err != nil {
				return nil, err
			}
			c.Date, changed = raw, true
		} else if old == nil {
			return nil, feedError("alarms once trigger feed is missing the date parameter")
		}
		if raw, ok := p["deleteAfterFire"]; ok {
			v := strings.ToLower(strings.TrimSpace(strings.Trim(string(raw), `"`)))
			if v != "false" && v != "true" && v != "rules" {
				return nil, feedError("deleteAfterFire parameter must be one of [false, true, rules].")
			}
			c.DeleteAfterFire, changed = v, true
		}
		if old == nil || changed {
			return c, nil
		}
		return nil, feedError("no updatable parameters were specified")
	case feedInterval:
		if raw, ok := p["minutes"]; ok {
			m, err := parseMinutes(raw)
			if err != nil {
				return nil, err
			}
			c.Minutes, changed = m, true
		} else if old == nil {
			return nil, feedError("interval trigger feed is missing the minutes parameter")
		}
	default:
		if raw, ok := p["cron"]; ok {
			var expr string
			if json.Unmarshal(raw, &expr) != nil {
				return nil, feedError("cron pattern '%s' is not valid", raw)
			}
			if _, err := ParseCron(expr); err != nil {
				return nil, feedError("cron pattern '%s' is not valid", expr)
			}
			c.Cron, changed = expr, true
		} else if old == nil {
			return nil, feedError("alarms trigger feed is missing the cron parameter")
		}
		if raw, ok := p["timezone"]; ok {
			var tz string
			if json.Unmarshal(raw, &tz) != nil {
				return nil, feedError("timezone parameter '%s' is not a valid time zone", raw)
			}
			if _, err := time.LoadLocation(tz); err != nil {
				return nil, feedError("timezone parameter '%s' is not a valid time zone", tz)
			}
			c.Timezone, changed = tz, true
		}
	}
	// startDate and stopDate, for cron and interval alarms.
	var start *time.Time
	if raw, ok := p["startDate"]; ok {
		t, err := checkDate(raw, "startDate", nil, now)
		if err != nil {
			return nil, err
		}
		c.StartDate, start, changed = raw, &t, true
	} else if len(c.StartDate) > 0 {
		if t, err := parseDate(c.StartDate); err == nil {
			start = &t
		}
	}
	if raw, ok := p["stopDate"]; ok {
		if _, err := checkDate(raw, "stopDate", start, now); err != nil {
			return nil, err
		}
		c.StopDate, changed = raw, true
	} else if start != nil && len(c.StopDate) > 0 {
		if stop, err := parseDate(c.StopDate); err == nil && !stop.After(*start) {
			return nil, feedError("startDate parameter '%s' must be less than the stopDate parameter '%s'", rawText(c.StartDate), rawText(c.StopDate))
		}
	}
	if old != nil && !changed {
		return nil, feedError("no updatable parameters were specified")
	}
	if c.Cron != "" && len(c.StopDate) > 0 {
		s := newSchedule(c, now)
		if first := s.nextAfter(now); first.IsZero() {
			return nil, feedError("the first scheduled trigger fire is not until after the stop date")
		}
	}
	return c, nil
}

// constructPayload reads trigger_payload: an object as it is, a string
// wrapped as {"payload": s}.
func constructPayload(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '{':
		return raw, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, feedError("trigger_payload is not valid JSON")
		}
		return json.Marshal(map[string]string{"payload": s})
	case string(raw) == "null":
		return json.RawMessage("{}"), nil
	}
	return nil, feedError("trigger_payload must be an object or a string")
}

func parseMinutes(raw json.RawMessage) (int, error) {
	text := strings.Trim(string(bytes.TrimSpace(raw)), `"`)
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, feedError("the minutes parameter must be an integer")
	}
	if f <= 0 {
		return 0, feedError("the minutes parameter must be an integer greater than zero")
	}
	if f > 1<<31 {
		return 0, feedError("the minutes parameter must be an integer")
	}
	return int(f), nil
}

// parseDate reads a date as the alarms package takes it: epoch ms (a
// number) or an ISO-8601 string.
func parseDate(raw json.RawMessage) (time.Time, error) {
	var ms float64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return time.UnixMilli(int64(ms)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, err
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date: %s", s)
}

// checkDate validates a date parameter with OpenWhisk's messages: valid,
// in the future, and after start when given.
func checkDate(raw json.RawMessage, name string, start *time.Time, now time.Time) (time.Time, error) {
	t, err := parseDate(raw)
	switch {
	case err != nil:
		return t, feedError("%s parameter '%s' is not a valid Date", name, rawText(raw))
	case !t.After(now):
		return t, feedError("%s parameter '%s' must be in the future", name, rawText(raw))
	case start != nil && !t.After(*start):
		return t, feedError("%s parameter '%s' must be greater than the startDate parameter '%s'", name, rawText(raw), start.UTC().Format(time.RFC3339Nano))
	}
	return t, nil
}

// rawText prints a JSON value as JavaScript would in a message: strings
// without quotes.
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// read renders the configuration for a READ, as the alarms package does.
func (c *alarmConfig) read(f string) map[string]any {
	out := map[string]any{"payload": c.Payload}
	if f == feedOnce {
		out["date"] = c.Date
		out["deleteAfterFire"] = c.DeleteAfterFire
		return out
	}
	if len(c.StartDate) > 0 {
		out["startDate"] = c.StartDate
	}
	if len(c.StopDate) > 0 {
		out["stopDate"] = c.StopDate
	}
	if f == feedInterval {
		out["minutes"] = c.Minutes
	} else {
		out["cron"] = c.Cron
		if c.Timezone != "" {
			out["timezone"] = c.Timezone
		}
	}
	return out
}

// schedule computes an alarm's ticks. Its configuration is parsed once,
// by newSchedule: due asks for ticks up to maxCatchUp times.
type schedule struct {
	cfg         *alarmConfig
	created     time.Time
	date        time.Time // a once alarm's date, when dateOK
	dateOK      bool
	start, stop time.Time // zero: none (or not a date)
	cron        *Cron     // nil: not a cron alarm, or not a valid pattern
	loc         *time.Location
}

func newSchedule(cfg *alarmConfig, created time.Time) schedule {
	s := schedule{cfg: cfg, created: created, loc: time.UTC}
	if len(cfg.Date) > 0 {
		d, err := parseDate(cfg.Date)
		s.date, s.dateOK = d, err == nil
	}
	if len(cfg.StartDate) > 0 {
		s.start, _ = parseDate(cfg.StartDate)
	}
	if len(cfg.StopDate) > 0 {
		s.stop, _ = parseDate(cfg.StopDate)
	}
	if cfg.Cron != "" {
		s.cron, s.loc = parsedCron(cfg.Cron, cfg.Timezone)
	}
	return s
}

// cronCacheSize bounds the parsed patterns kept; a full cache is emptied.
const cronCacheSize = 1024

type cronEntry struct {
	cron *Cron
	loc  *time.Location
}

// cronCache holds parsed (pattern, timezone) pairs: the alarm loop makes
// a schedule of every alarm at every wake-up, and loading a zone reads
// the zone database each time.
var cronCache = struct {
	sync.Mutex
	m map[[2]string]cronEntry
}{m: map[[2]string]cronEntry{}}

// parsedCron returns the parsed pattern (nil when invalid) and the
// location of timezone (UTC when empty or unknown).
func parsedCron(spec, timezone string) (*Cron, *time.Location) {
	key := [2]string{spec, timezone}
	cronCache.Lock()
	e, ok := cronCache.m[key]
	cronCache.Unlock()
	if ok {
		return e.cron, e.loc
	}
	e.cron, _ = ParseCron(spec)
	e.loc = time.UTC
	if timezone != "" {
		if l, err := time.LoadLocation(timezone); err == nil {
			e.loc = l
		}
	}
	cronCache.Lock()
	if len(cronCache.m) >= cronCacheSize {
		clear(cronCache.m)
	}
	cronCache.m[key] = e
	cronCache.Unlock()
	return e.cron, e.loc
}

// nextAfter returns the first tick strictly after t, or zero when none is left.
func (s schedule) nextAfter(t time.Time) time.Time {
	start, stop := s.start, s.stop
	var next time.Time
	switch {
	case len(s.cfg.Date) > 0:
		if s.dateOK && s.date.After(t) {
			next = s.date
		}
	case s.cfg.Minutes > 0:
		next = s.intervalAfter(t)
	case s.cfg.Cron != "":
		if s.cron == nil {
			return time.Time{}
		}
		from := t
		if !start.IsZero() && start.Add(-time.Nanosecond).After(from) {
			from = start.Add(-time.Nanosecond) // ticks at or after the start date
		}
		next = s.cron.Next(from.In(s.loc))
	}
	if next.IsZero() || (!stop.IsZero() && next.After(stop)) {
		return time.Time{}
	}
	return next
}

// intervalAfter is nextAfter of an interval alarm. Ticks are whole
// milliseconds, base + k·interval, computed in int64 milliseconds (with
// unsigned differences, exact over the whole range): the interval may be
// up to 2^31 minutes, beyond what a time.Duration holds, and a Duration
// computation that overflowed gave ticks before t.
func (s schedule) intervalAfter(t time.Time) time.Time {
	iv := int64(s.cfg.Minutes) * 60_000
	var base int64
	if !s.start.IsZero() {
		base = s.start.UnixMilli()
		if time.UnixMilli(base).Before(s.start) {
			base++ // the first tick at or after the start date
		}
	} else {
		// Without a start date the first tick is one interval after creation.
		created := s.created.UnixMilli()
		if created > math.MaxInt64-iv {
			return time.Time{}
		}
		base = created + iv
	}
	x := t.UnixMilli() // t's whole milliseconds: a tick after them is after t
	if base > x {
		return time.UnixMilli(base)
	}
	k := (uint64(x)-uint64(base))/uint64(iv) + 1
	if k > (uint64(math.MaxInt64)-uint64(base))/uint64(iv) {
		return time.Time{} // beyond the end of time
	}
	return time.UnixMilli(int64(uint64(base) + k*uint64(iv)))
}

// maxCatchUp bounds how many ticks due computes through after a long
// stop; only the latest missed tick fires anyway.
const maxCatchUp = 1 << 20

// due returns the latest tick after last and at or before now: the one to
// fire. Ticks missed while no node ran are not fired one by one: only the
// latest, once.
func (s schedule) due(last, now time.Time) time.Time {
	t := s.nextAfter(last)
	if t.IsZero() || t.After(now) {
		return time.Time{}
	}
	if s.cfg.Minutes > 0 {
		// Arithmetic, not a walk, in milliseconds as intervalAfter: t is a
		// tick at or before now (and the stop date), so neither step
		// leaves the int64 range.
		iv := uint64(s.cfg.Minutes) * 60_000
		tm := uint64(t.UnixMilli())
		tm += (uint64(now.UnixMilli()) - tm) / iv * iv
		if !s.stop.IsZero() && time.UnixMilli(int64(tm)).After(s.stop) {
			over := tm - uint64(s.stop.UnixMilli())
			back := over / iv
			if over%iv != 0 {
				back++
			}
			tm -= back * iv // to the last tick at or before it
		}
		return time.UnixMilli(int64(tm))
	}
	for i := 0; i < maxCatchUp; i++ {
		n := s.nextAfter(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
	return t
}
