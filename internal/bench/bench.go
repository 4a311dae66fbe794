// Package bench is `gust bench`: Gust's end-to-end performance harness.
//
// Every figure is measured beside a baseline of the same run, because
// absolute numbers drift by a factor of two between runs on a shared
// machine (shared/reference/baselines-summary.md): floor-http (a bare
// net/http server), floor-exec (fork+exec of interpreters) and floor-nats
// (a NATS round trip). Load scenarios run in a closed loop (N workers,
// each sending its next request when the last one answered, on kept-alive
// connections) for several rounds at each concurrency, each round
// measuring the floor right before the scenario; figures are medians over
// rounds and ratios are medians of the per-round ratios. The table marks
// the bars of the issue as met or missed. docs/PERFORMANCE.md describes
// the method and the latest results.
//
// The bench starts a node of its own in-process (package app) unless
// --apihost names a running one. Its wasm modules are the wasmtest
// fixtures, built from their sources in the checkout; a scenario whose
// module or feature is missing is reported as not available, with the
// reason, never skipped silently.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command-line settings.
type options struct {
	json       string
	scenarios  []string
	duration   time.Duration
	rounds     int
	roundsSet  bool // --rounds was given: it applies to every scenario
	durSet     bool // --duration was given: likewise
	conc       []int
	apihost    string
	auth       string
	cpuprofile string
	storeSizes []int
}

// Main runs `gust bench` with args (after "bench"). The table goes to
// stdout (to stderr when --json - takes stdout), progress to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	selected, err := selectScenarios(opt.scenarios)
	if err != nil {
		return err
	}
	if opt.cpuprofile != "" {
		f, err := os.Create(opt.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r := newRunner(opt, stderr)
	defer r.close()
	rep, err := r.run(ctx, selected)
	if err != nil {
		return err
	}
	table := stdout
	if opt.json == "-" {
		table = stderr
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else if opt.json != "" {
		f, err := os.Create(opt.json)
		if err != nil {
			return err
		}
		if err := errors.Join(writeJSON(f, rep), f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", opt.json, err)
		}
	}
	writeTable(table, rep)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	opt := options{conc: []int{1, 10, 50}, storeSizes: []int{10_000, 100_000}}
	fs := flag.NewFlagSet("gust bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.json, "json", "", "also write the results as JSON to `FILE` (- for stdout)")
	fs.Func("scenario", "run `NAME` and the baselines it needs (repeatable; default: all)", func(s string) error {
		opt.scenarios = append(opt.scenarios, s)
		return nil
	})
	fs.DurationVar(&opt.duration, "duration", 600*time.Millisecond, "length of each measurement (by default half of it for the event and scheduling scenarios; the default set runs in under 3 minutes on 2 cores)")
	fs.IntVar(&opt.rounds, "rounds", 5, "rounds of each load measurement, each beside its floor (by default 3 for the event and scheduling scenarios)")
	fs.Func("concurrency", "closed-loop workers of the load scenarios, `N,N,...` (default 1,10,50)", func(s string) (err error) {
		opt.conc, err = intList(s, 1, 1000)
		return err
	})
	fs.StringVar(&opt.apihost, "apihost", "", "drive the running node at `HOST` (host[:port] for https, or a URL) instead of starting one")
	fs.StringVar(&opt.auth, "auth", "", "`UUID:KEY` credentials for --apihost")
	fs.StringVar(&opt.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	fs.Func("store-records", "activation-store sizes, `N,N,...` (default 10000,100000; 1000000 takes minutes)", func(s string) (err error) {
		opt.storeSizes, err = intList(s, 100, 100_000_000)
		return err
	})
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: gust bench [flags]\n\nMeasures Gust end to end beside same-run baselines and checks the performance bars.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nScenarios:\n")
		for _, s := range catalogue {
			fmt.Fprintf(fs.Output(), "  %-20s %s\n", s.name, s.about)
		}
	}
	if err := fs.Parse(args); err != nil {
		return opt, err
	}
	fs.Visit(func(f *flag.Flag) {
		opt.roundsSet = opt.roundsSet || f.Name == "rounds"
		opt.durSet = opt.durSet || f.Name == "duration"
	})
	if fs.NArg() > 0 {
		return opt, fmt.Errorf("unexpected argument %q (run 'gust bench --help')", fs.Arg(0))
	}
	if opt.duration <= 0 {
		return opt, errors.New("--duration must be positive")
	}
	if opt.rounds < 1 {
		return opt, errors.New("--rounds must be at least 1")
	}
	if opt.auth != "" && opt.apihost == "" {
		return opt, errors.New("--auth is for --apihost")
	}
	slices.Sort(opt.storeSizes)
	opt.storeSizes = slices.Compact(opt.storeSizes)
	return opt, nil
}

// intList parses "1,10,50", each value in [lo, hi], keeping order and
// dropping repeats.
func intList(s string, lo, hi int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q: want integers from %d to %d, comma-separated", s, lo, hi)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
