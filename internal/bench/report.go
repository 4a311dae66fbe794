package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Schema names the version of the JSON document that --json writes.
// Fields are only ever added; a change of meaning gets a new version.
const Schema = "gust-bench/1"

// Report is the machine-readable result of one run (--json).
type Report struct {
	Schema   string   `json:"schema"`
	Date     string   `json:"date"`   // RFC 3339, UTC
	Commit   string   `json:"commit"` // VCS revision, "+dirty" when modified; "unknown" outside a checkout
	Machine  Machine  `json:"machine"`
	Target   string   `json:"target"` // "in-process node" or the --apihost URL
	Settings Settings `json:"settings"`
	Tools    []Tool   `json:"tools"` // interpreters, toolchains and engines used
	Results  []Row    `json:"results"`
	ElapsedS float64  `json:"elapsed_s"`
}

// Machine is where the run happened.
type Machine struct {
	Cores  int    `json:"cores"`
	CPU    string `json:"cpu,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
	// Load averages (1, 5, 15 min) at the start and the end of the run:
	// other work on the machine shows here, and in the spread of rounds.
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// Settings are the measurement settings of the run.
type Settings struct {
	DurationS   float64  `json:"duration_s"` // per measurement
	Rounds      int      `json:"rounds"`
	Concurrency []int    `json:"concurrency"`
	Scenarios   []string `json:"scenarios"`
	// Shorter lists the event and scheduling scenarios, which by default
	// run fewer rounds of briefer measurements: ShorterRounds of
	// ShorterDurationS each.
	Shorter          []string `json:"shorter,omitempty"`
	ShorterRounds    int      `json:"shorter_rounds,omitempty"`
	ShorterDurationS float64  `json:"shorter_duration_s,omitempty"`
}

// Tool is an interpreter or toolchain a figure depends on.
type Tool struct {
	Name     string `json:"name"`
	Path     string `json:"path,omitempty"`
	Resolved string `json:"resolved,omitempty"` // the path after symbolic links
	Version  string `json:"version,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Row is one line of the table: a scenario (and variant) at one
// concurrency. Latency and CPU figures are medians over rounds in
// microseconds; ratios are medians of the per-round ratios to the baseline
// measured beside the row, or ratios of medians for rows measured once.
// Zero means not measured.
type Row struct {
	Scenario    string    `json:"scenario"`
	Variant     string    `json:"variant,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Available   bool      `json:"available"`
	Reason      string    `json:"reason,omitempty"` // why it is not available
	Rounds      int       `json:"rounds,omitempty"`
	Ops         int64     `json:"ops,omitempty"`
	Errors      int64     `json:"errors,omitempty"`
	P50         float64   `json:"p50_us,omitempty"`
	P99         float64   `json:"p99_us,omitempty"`
	Throughput  float64   `json:"throughput_per_s,omitempty"`
	CPU         float64   `json:"cpu_us_per_op,omitempty"`
	Value       float64   `json:"value,omitempty"` // a figure that is not a latency or a rate (MB per instance, a share), in Unit
	Unit        string    `json:"unit,omitempty"`
	Baseline    string    `json:"baseline,omitempty"`
	Ratio       *Ratios   `json:"ratio,omitempty"`
	Bar         *BarCheck `json:"bar,omitempty"`
	PerRound    []Figures `json:"per_round,omitempty"`
	Note        string    `json:"note,omitempty"`
}

// Ratios are a row's figures divided by its baseline's.
type Ratios struct {
	P50        float64 `json:"p50,omitempty"`
	P99        float64 `json:"p99,omitempty"`
	Throughput float64 `json:"throughput,omitempty"`
	CPU        float64 `json:"cpu,omitempty"`
	Value      float64 `json:"value,omitempty"`
}

// Figures are one round's figures of a row.
type Figures struct {
	P50        float64 `json:"p50_us,omitempty"`
	P99        float64 `json:"p99_us,omitempty"`
	Throughput float64 `json:"throughput_per_s,omitempty"`
	CPU        float64 `json:"cpu_us_per_op,omitempty"`
	Value      float64 `json:"value,omitempty"`
}

// BarCheck is a bar of the issue checked against a row.
type BarCheck struct {
	Bar       string  `json:"bar"`    // e.g. "p50 ≤ 2× floor-http"
	Metric    string  `json:"metric"` // one of the metric constants
	Limit     float64 `json:"limit"`
	AtMost    bool    `json:"at_most"`          // the value must not exceed the limit (else: must reach it)
	Strict    bool    `json:"strict,omitempty"` // the value must not equal the limit either
	Value     float64 `json:"value"`            // the row's median
	Min       float64 `json:"min"`              // over rounds
	Max       float64 `json:"max"`
	Met       bool    `json:"met"`       // by the median
	Unanimous bool    `json:"unanimous"` // every round agrees with the median's verdict
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// writeTable prints the human-readable report.
func writeTable(w io.Writer, r *Report) {
	fmt.Fprintf(w, "gust bench  %s  commit %s  (%.0fs)\n", r.Date, r.Commit, r.ElapsedS)
	m := r.Machine
	fmt.Fprintf(w, "machine: %d cores", m.Cores)
	if m.CPU != "" {
		fmt.Fprintf(w, " (%s)", m.CPU)
	}
	fmt.Fprintf(w, ", %s %s %s, %s", m.OS, m.Kernel, m.Arch, m.Go)
	if m.LoadStart != "" {
		fmt.Fprintf(w, ", load average %s at start, %s at end", m.LoadStart, m.LoadEnd)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "target: %s\n", r.Target)
	s := r.Settings
	fmt.Fprintf(w, "method: closed loop with keep-alive, %d round(s) of %s per scenario and concurrency, each round beside its floor;\n", s.Rounds, time.Duration(s.DurationS*float64(time.Second)))
	if len(s.Shorter) > 0 {
		fmt.Fprintf(w, "        (%s: %d round(s) of %s);\n", strings.Join(s.Shorter, ", "), s.ShorterRounds, time.Duration(s.ShorterDurationS*float64(time.Second)))
	}
	fmt.Fprintf(w, "        figures are medians over rounds, ×figures are medians of per-round ratios to the baseline (lower is better, but for throughput)\n")
	for _, t := range r.Tools {
		fmt.Fprintf(w, "tool: %s", t.Name)
		if t.Path != "" {
			fmt.Fprintf(w, " %s", t.Path)
			if t.Resolved != "" && t.Resolved != t.Path {
				fmt.Fprintf(w, " -> %s", t.Resolved)
			}
		}
		if t.Version != "" {
			fmt.Fprintf(w, " (%s)", t.Version)
		}
		if t.Note != "" {
			fmt.Fprintf(w, "; %s", t.Note)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := true
	for _, row := range r.Results {
		if !row.Available || row.Unit != "" {
			continue
		}
		if header {
			fmt.Fprintln(tw, "scenario\tvariant\tc\tp50\tp99\tthroughput\tcpu/op\tbaseline\t×p50\t×p99\t×tput\t×cpu\tbar\tresult\t")
			header = false
		}
		c := ""
		if row.Concurrency > 0 {
			c = fmt.Sprint(row.Concurrency)
		}
		var rt Ratios
		if row.Ratio != nil {
			rt = *row.Ratio
		}
		bar, result := barResult(row)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			row.Scenario, row.Variant, c, fmtUS(row.P50), fmtUS(row.P99), fmtRate(row.Throughput), fmtUS(row.CPU),
			row.Baseline, fmtRatio(rt.P50), fmtRatio(rt.P99), fmtRatio(rt.Throughput), fmtRatio(rt.CPU), bar, result)
	}
	tw.Flush()

	// Rows of values (memory, shares) have a table of their own, notes
	// inline: they have no latency or rate columns to fill.
	first := true
	for _, row := range r.Results {
		if !row.Available || row.Unit == "" {
			continue
		}
		if first {
			if !header {
				fmt.Fprintln(w)
			}
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "scenario\tvariant\tvalue\tbaseline\t×value\tbar\tresult\tnote\t")
			first = false
		}
		var rt Ratios
		if row.Ratio != nil {
			rt = *row.Ratio
		}
		bar, result := barResult(row)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			row.Scenario, row.Variant, fmtValue(row.Value, row.Unit), row.Baseline, fmtRatio(rt.Value), bar, result, row.Note)
	}
	if !first {
		tw.Flush()
	}

	first = true
	for _, row := range r.Results {
		if row.Available {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nnot available:")
			first = false
		}
		fmt.Fprintf(w, "  %-20s %s\n", row.Scenario, row.Reason)
	}
	for _, row := range r.Results {
		if row.Available && row.Note != "" && row.Unit == "" {
			label := row.Scenario
			if row.Variant != "" {
				label += " " + row.Variant
			}
			fmt.Fprintf(w, "note: %s c=%d: %s\n", label, row.Concurrency, row.Note)
		}
	}
}

// barResult renders the bar of a row and its verdict, and its errors.
func barResult(row Row) (bar, result string) {
	if b := row.Bar; b != nil {
		bar, result = b.Bar, "met"
		if !b.Met {
			result = "MISSED"
		}
		if !b.Unanimous {
			result += " (rounds disagree)"
		}
	}
	if row.Errors > 0 {
		result = strings.TrimSpace(result + fmt.Sprintf(" %d errors", row.Errors))
	}
	return bar, result
}

// fmtValue formats a value with about three significant digits and its unit.
func fmtValue(v float64, unit string) string {
	var s string
	switch {
	case v <= 0:
		return "-"
	case v < 1:
		s = fmt.Sprintf("%.3f", v)
	case v < 10:
		s = fmt.Sprintf("%.2f", v)
	case v < 100:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.0f", v)
	}
	if unit == "%" {
		return s + "%"
	}
	return s + " " + unit
}

// fmtUS formats microseconds with three significant digits.
func fmtUS(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fµs", v)
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 10_000:
		return fmt.Sprintf("%.2fms", v/1e3)
	case v < 1e6:
		return fmt.Sprintf("%.1fms", v/1e3)
	}
	return fmt.Sprintf("%.2fs", v/1e6)
}

func fmtRate(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 100:
		return fmt.Sprintf("%.1f/s", v)
	case v < 1000:
		return fmt.Sprintf("%.0f/s", v)
	case v < 1e6:
		return fmt.Sprintf("%.1fk/s", v/1e3)
	}
	return fmt.Sprintf("%.2fM/s", v/1e6)
}

func fmtRatio(v float64) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v)
}

// writeJSON writes r as indented JSON.
func writeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
