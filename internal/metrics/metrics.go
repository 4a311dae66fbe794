// Package metrics keeps Gust's counters and gauges in memory and renders
// them in the Prometheus text exposition format. It is deliberately small:
// a handful of families with fixed label names, no client library.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metric families.
type Registry struct {
	mu       sync.RWMutex
	families map[string]*family
}

type kind int

const (
	counterKind kind = iota
	gaugeKind
)

type family struct {
	name, help string
	kind       kind
	labels     []string
	mu         sync.RWMutex
	series     map[string]*series // by joined label values
}

type series struct {
	values []string
	v      atomic.Uint64 // float64 bits
}

// New returns an empty registry.
func New() *Registry { return &Registry{families: map[string]*family{}} }

func (r *Registry) family(name, help string, k kind, labels []string) *family {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		return f
	}
	f := &family{name: name, help: help, kind: k, labels: labels, series: map[string]*series{}}
	r.families[name] = f
	return f
}

// Counter is a monotonically increasing family.
type Counter struct{ f *family }

// Gauge is a family of values that go up and down.
type Gauge struct{ f *family }

// Counter registers (or returns) a counter family.
func (r *Registry) Counter(name, help string, labels ...string) Counter {
	return Counter{r.family(name, help, counterKind, labels)}
}

// Gauge registers (or returns) a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) Gauge {
	return Gauge{r.family(name, help, gaugeKind, labels)}
}

func (f *family) get(values []string) *series {
	// The key is built on the stack and looked up without a string made
	// of it: series are updated on every activation.
	var kb [256]byte
	key := kb[:0]
	for i, v := range values {
		if i > 0 {
			key = append(key, 0)
		}
		key = append(key, v...)
	}
	f.mu.RLock()
	s, ok := f.series[string(key)]
	f.mu.RUnlock()
	if ok {
		return s
	}
	return f.add(string(key), values)
}

func (f *family) add(key string, values []string) *series {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s *series
	var ok bool
	if s, ok = f.series[key]; !ok {
		s = &series{values: append([]string(nil), values...)}
		f.series[key] = s
	}
	return s
}

func add(s *series, d float64) {
	for {
		old := s.v.Load()
		if s.v.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Add adds d (≥ 0) to the series with the given label values.
func (c Counter) Add(d float64, values ...string) { add(c.f.get(values), d) }

// Inc adds one.
func (c Counter) Inc(values ...string) { c.Add(1, values...) }

// Set sets the gauge.
func (g Gauge) Set(v float64, values ...string) { g.f.get(values).v.Store(math.Float64bits(v)) }

// Add moves the gauge by d.
func (g Gauge) Add(d float64, values ...string) { add(g.f.get(values), d) }

// Value returns the current value of a series (0 when absent).
func (r *Registry) Value(name string, values ...string) float64 {
	r.mu.RLock()
	f, ok := r.families[name]
	r.mu.RUnlock()
	if !ok {
		return 0
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if s, ok := f.series[strings.Join(values, "\x00")]; ok {
		return math.Float64frombits(s.v.Load())
	}
	return 0
}

// Write renders every family in the text format. keep, when non-nil,
// selects the series to show (e.g. one tenant's).
func (r *Registry) Write(w io.Writer, keep func(labels map[string]string) bool) error {
	r.mu.RLock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.RUnlock()
	sort.Slice(fams, func(i, j int) bool { return fams[i].name < fams[j].name })
	var b strings.Builder
	for _, f := range fams {
		typ := "counter"
		if f.kind == gaugeKind {
			typ = "gauge"
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, typ)
		f.mu.RLock()
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := f.series[k]
			labels := make(map[string]string, len(f.labels))
			for i, l := range f.labels {
				labels[l] = s.values[i]
			}
			if keep != nil && !keep(labels) {
				continue
			}
			b.WriteString(f.name)
			if len(f.labels) > 0 {
				b.WriteByte('{')
				for i, l := range f.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=%q", l, escape(s.values[i]))
				}
				b.WriteByte('}')
			}
			fmt.Fprintf(&b, " %g\n", math.Float64frombits(s.v.Load()))
		}
		f.mu.RUnlock()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escape keeps label values on one line; %q adds the quotes and escapes
// backslashes and quotes as the format wants.
func escape(v string) string { return strings.ReplaceAll(v, "\n", " ") }
