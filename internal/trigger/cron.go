package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed cron expression, as the alarms feed takes it: five
// fields (minute hour day-of-month month day-of-week) or six with seconds
// first. Fields take *, values, ranges a-b, steps */n and a-b/n, and
// lists; months and weekdays also take English names (jan, mon), weekday 7
// is Sunday, and ? means * in the day fields. When both day fields are
// restricted a day matching either one matches, as in Vixie cron.
type Cron struct {
	second, minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domAny, dowAny                        bool
	seconds                               bool // six fields
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var (
	fSecond = cronField{name: "second", min: 0, max: 59}
	fMinute = cronField{name: "minute", min: 0, max: 59}
	fHour   = cronField{name: "hour", min: 0, max: 23}
	fDom    = cronField{name: "day of month", min: 1, max: 31}
	fMonth  = cronField{name: "month", min: 1, max: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}}
	fDow = cronField{name: "day of week", min: 0, max: 7,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
)

// ParseCron parses a cron expression.
func ParseCron(expr string) (*Cron, error) {
	fields := strings.Fields(expr)
	var c Cron
	switch len(fields) {
	case 5:
		c.second = 1 // second 0
	case 6:
		c.seconds = true
		bits, _, err := fSecond.parse(fields[0])
		if err != nil {
			return nil, err
		}
		c.second = bits
		fields = fields[1:]
	default:
		return nil, fmt.Errorf("cron: want 5 or 6 fields, have %d", len(fields))
	}
	var err error
	if c.minute, _, err = fMinute.parse(fields[0]); err != nil {
		return nil, err
	}
	if c.hour, _, err = fHour.parse(fields[1]); err != nil {
		return nil, err
	}
	if c.dom, c.domAny, err = fDom.parse(fields[2]); err != nil {
		return nil, err
	}
	if c.month, _, err = fMonth.parse(fields[3]); err != nil {
		return nil, err
	}
	if c.dow, c.dowAny, err = fDow.parse(fields[4]); err != nil {
		return nil, err
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron: %q never matches", expr) // e.g. 30 February
	}
	return &c, nil
}

// HasSeconds reports whether the expression has a seconds field.
func (c *Cron) HasSeconds() bool { return c.seconds }

// parse reads one field into a bit set; star reports a field of only *
// (or ?), which matters for the day fields.
func (f cronField) parse(s string) (bits uint64, star bool, err error) {
	if s == "*" || (s == "?" && (f.name == fDom.name || f.name == fDow.name)) {
		return f.all(), true, nil
	}
	for _, item := range strings.Split(s, ",") {
		b, err := f.parseItem(item)
		if err != nil {
			return 0, false, err
		}
		bits |= b
	}
	return bits, false, nil
}

func (f cronField) all() uint64 {
	var b uint64
	for i := f.min; i <= f.max; i++ {
		b |= 1 << i
	}
	return b
}

// parseItem reads "*", "v", "a-b", each optionally "/step".
func (f cronField) parseItem(item string) (uint64, error) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n <= 0 || n > f.max-f.min+1 {
			return 0, fmt.Errorf("cron: bad step %q in the %s field", stepText, f.name)
		}
		step = n
	}
	lo, hi := f.min, f.max
	switch {
	case rng == "*":
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = f.value(a); err != nil {
			return 0, err
		}
		if hi, err = f.value(b); err != nil {
			return 0, err
		}
		if lo > hi {
			return 0, fmt.Errorf("cron: range %q goes backwards in the %s field", rng, f.name)
		}
	default:
		v, err := f.value(rng)
		if err != nil {
			return 0, err
		}
		lo = v
		if hasStep {
			hi = f.max // "5/15" means from 5 on, every 15
		} else {
			hi = v
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	return bits, nil
}

// value reads a number or a name of the field.
func (f cronField) value(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < f.min || n > f.max {
			return 0, fmt.Errorf("cron: %d is out of range %d-%d in the %s field", n, f.min, f.max, f.name)
		}
		return n, nil
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	return 0, fmt.Errorf("cron: %q is not a value of the %s field", s, f.name)
}

func (c *Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domAny && c.dowAny:
		return true
	case c.domAny:
		return dow
	case c.dowAny:
		return dom
	}
	return dom || dow
}

// Next returns the first time strictly after t that matches, in t's
// location, or the zero time when there is none within five years.
func (c *Cron) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Second).Add(time.Second)
	limit := t.Year() + 5
	for t.Year() <= limit {
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		next := t
		switch {
		case c.month&(1<<int(mo)) == 0:
			next = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
		case !c.dayMatches(t):
			next = time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
		case c.hour&(1<<h) == 0:
			next = time.Date(y, mo, d, h+1, 0, 0, 0, loc)
		case c.minute&(1<<mi) == 0:
			next = time.Date(y, mo, d, h, mi+1, 0, 0, loc)
		case c.second&(1<<s) == 0:
			next = t.Add(time.Second)
		default:
			return t
		}
		// Daylight saving time can send wall-clock arithmetic backwards;
		// time itself must always move forward.
		if !next.After(t) {
			next = t.Add(time.Second)
		}
		t = next
	}
	return time.Time{}
}
