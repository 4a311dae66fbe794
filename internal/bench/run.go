package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gust"
)

// runner carries one run of the bench.
type runner struct {
	opt      options
	prog     *progress
	fx       *fixtures
	cacheDir string // os.UserCacheDir()/gust/bench

	tgt       *target
	setup     *http.Client // the raw requests outside the loads: single invokes, polls of records
	floorHTTP *floorHTTP
	floorNATS *floorNATS
	entities  []func(context.Context) error // delete what the bench created on the target, at the end, newest first
	closers   []func()                      // what scenarios started (clients, a second node), stopped at the end, last first

	series      []*series
	unavailable []Row
	tools       []Tool
}

// load is a scenario measured in rounds by the closed-loop generator at
// each concurrency, beside floor-http.
type load struct {
	name string
	// measure warms up, measures once at concurrency c and returns the
	// figures of each variant it measures ("" for the scenario itself).
	measure func(ctx context.Context, c int) ([]variant, error)
	// once measures the scenario in the rounds of the first concurrency
	// only: its figures are taken one at a time, or in a burst of their
	// own, whatever the round's concurrency.
	once bool
	// rounds, when set, is the scenario's number of rounds unless --rounds
	// is given: the event and scheduling scenarios run fewer, so that the
	// default set stays within 3 minutes on 2 cores.
	rounds int
}

// unavailable is an error of a load's measure that makes the scenario
// not available (e.g. a node it starts would not start), rather than
// ending the run.
type unavailable struct{ error }

func (u unavailable) Unwrap() error { return u.error }

type variant struct {
	name string
	f    figures
	conc int // the concurrency of the figures, when not the round's
	// base names the variant of the same measurement that is this one's
	// baseline, measured beside it in every round; "" for floor-http.
	base string
	// own marks a baseline the scenario measures itself (a floor of its
	// own): it has no baseline.
	own bool
	// note says what a reader must know about the figures (the row's
	// note). A note of any round is kept, the latest given winning, even
	// when later rounds gave none: it must therefore say which round(s)
	// it is about (as "… in a round"), not read as true of the median.
	note string
}

// newRounds is the number of rounds of the event and scheduling scenarios
// by default (see load.rounds).
const newRounds = 3

func newRunner(opt options, stderr io.Writer) *runner {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "gust", "bench")
	return &runner{opt: opt, prog: newProgress(stderr), fx: newFixtures(dir), cacheDir: dir, setup: newClient(4)}
}

// run measures the selected scenarios and returns the report.
func (r *runner) run(ctx context.Context, selected []scenario) (*Report, error) {
	start := time.Now()
	rep := &Report{
		Schema: Schema, Date: start.UTC().Format(time.RFC3339), Commit: commit(ctx), Machine: machine(),
		Settings: Settings{DurationS: r.opt.duration.Seconds(), Rounds: r.opt.rounds, Concurrency: r.opt.conc},
	}
	for _, s := range selected {
		rep.Settings.Scenarios = append(rep.Settings.Scenarios, s.name)
	}
	has := func(name string) bool {
		return slices.ContainsFunc(selected, func(s scenario) bool { return s.name == name })
	}
	var err error
	if r.opt.apihost != "" {
		r.tgt, err = externalTarget(r.opt.apihost, r.opt.auth)
	} else {
		r.prog.printf("starting a node")
		r.tgt, err = startNode(ctx, filepath.Join(r.cacheDir, "wazero"), func(c *app.Config) {
			if has("mqtt-publish") {
				c.MQTTAddr = "127.0.0.1:0" // devices' listener, off by default
			}
		})
	}
	if err != nil {
		return nil, err
	}
	rep.Target = r.tgt.describe()

	var loads []load
	for _, s := range selected {
		l, err := r.prepareLoad(ctx, s.name)
		if err != nil {
			r.markUnavailable(s.name, err.Error())
			continue
		}
		if l != nil {
			loads = append(loads, *l)
			if n := r.roundsOf(*l); l.rounds > 0 && (n != r.opt.rounds || r.brief() != r.opt.duration) {
				st := &rep.Settings
				st.Shorter, st.ShorterRounds, st.ShorterDurationS = append(st.Shorter, l.name), n, r.brief().Seconds()
			}
		}
	}
	// Start-up costs are measured first, on a fresh node: the load rounds
	// leave a node with a large heap, whose garbage collection every later
	// allocation pays for (see docs/PERFORMANCE.md).
	if has("floor-exec") {
		if err := r.execFloor(ctx); err != nil {
			return nil, err
		}
	}
	if has("cold-wasm") {
		if err := r.cold(ctx); err != nil {
			return nil, fmt.Errorf("cold-wasm: %w", err)
		}
	}
	if has("cold-process") {
		r.coldProcess(ctx)
	}
	if err := r.rounds(ctx, loads); err != nil {
		return nil, err
	}
	if has("async-invoke") && r.find("async-invoke", "accept", 0) != nil {
		if err := r.acceptToRecord(ctx); err != nil {
			return nil, fmt.Errorf("async-invoke: %w", err)
		}
	}
	// Density reads the memory of the whole process: it runs when nothing
	// else does, after the loads (whose instances it leaves alone: it
	// measures the growth its own instances cause).
	if has("density") {
		if err := r.density(ctx); err != nil {
			return nil, fmt.Errorf("density: %w", err)
		}
	}
	if has("activation-store") {
		if err := r.store(ctx); err != nil {
			return nil, fmt.Errorf("activation-store: %w", err)
		}
	}
	if has("trace-replay") {
		if err := r.traceReplay(); err != nil {
			return nil, fmt.Errorf("trace-replay: %w", err)
		}
	}
	r.prog.done()

	// Report the load scenarios first, each group in the order measured.
	rank := map[string]int{}
	for _, l := range loads {
		rank[l.name] = -1
	}
	slices.SortStableFunc(r.series, func(a, b *series) int { return cmp.Compare(rank[a.scenario], rank[b.scenario]) })
	for _, s := range r.series {
		if s.base == nil && s.link != nil {
			s.base = r.find(s.link.scenario, s.link.variant, s.link.conc)
		}
	}
	rep.Results = append(rows(r.series), r.unavailable...)
	rep.Tools = append(r.tools, r.fx.toolList()...)
	rep.Tools = append(rep.Tools, wazeroTool())
	rep.Machine.LoadEnd = loadAverage()
	rep.ElapsedS = elapsedSince(start)
	return rep, nil
}

// prepareLoad sets up a load scenario; it returns nil for scenarios
// measured once, and an error when the scenario cannot run here (e.g. no
// C toolchain for its module, or a kind the node does not offer).
func (r *runner) prepareLoad(ctx context.Context, name string) (*load, error) {
	conns := slices.Max(r.opt.conc)
	switch name {
	case "floor-http":
		f, err := startFloorHTTP()
		if err != nil {
			return nil, err
		}
		r.floorHTTP = f
		return &load{name: name, measure: r.plain(f.request(newClient(conns), r.tgt.auth).do, true)}, nil
	case "floor-nats":
		var f *floorNATS
		var err error
		if r.tgt.inProcess() {
			f, err = startFloorNATS(ctx, r.tgt.node.Broker)
		} else {
			f, err = startFloorNATS(ctx, nil)
		}
		if err != nil {
			return nil, err
		}
		r.floorNATS = f
		return &load{name: name, measure: r.plain(f.do, true)}, nil
	case "invoke-wasm-c", "invoke-wasm-reactor", "invoke-python", "invoke-nodejs", "web-action", "web-action-reactor":
		action, a, err := r.benchAction(ctx, scenarioAction[name])
		if err != nil {
			return nil, err
		}
		if err := r.createAction(ctx, action, a); err != nil {
			return nil, err
		}
		req := r.tgt.blocking(newClient(conns), action)
		if name == "web-action" || name == "web-action-reactor" {
			ns, err := r.tgt.namespace(ctx)
			if err != nil {
				return nil, err
			}
			req = r.tgt.web(newClient(conns), ns, action)
		}
		// The CPU of worker processes is not this process's: not reported.
		cpu := r.tgt.inProcess() && name != "invoke-python" && name != "invoke-nodejs"
		return &load{name: name, measure: r.plain(req.do, cpu)}, nil
	case "async-invoke":
		_, a, err := r.benchAction(ctx, "noop-c")
		if err != nil {
			return nil, err
		}
		if err := r.createAction(ctx, actionPrefix+"async", a); err != nil {
			return nil, err
		}
		return &load{name: name, measure: r.async(newClient(conns))}, nil
	case "trigger-fire":
		return r.prepareTrigger(ctx, conns)
	case "mqtt-publish":
		return r.prepareMQTT(ctx)
	case "sequence":
		return r.prepareSequence(ctx)
	case "async-burst":
		return r.prepareBurst(ctx)
	case "placement":
		return r.preparePlacement(ctx)
	}
	return nil, nil
}

// The bench's actions: each load scenario's, by the name it is created as.
var scenarioAction = map[string]string{
	"invoke-wasm-c": "noop-c", "invoke-wasm-reactor": "noop-go-reactor",
	"invoke-python": "noop-python", "invoke-nodejs": "noop-nodejs", "web-action": "web",
	"web-action-reactor": "web-go-reactor",
}

// Sources of the no-op process actions.
const (
	noopPython = "def main(args):\n    return {}\n"
	noopNode   = "function main(params) {\n  return {};\n}\n"
)

// benchAction returns the full name and the definition of a bench action,
// building its wasm module when it has one.
func (r *runner) benchAction(ctx context.Context, short string) (string, action, error) {
	name := actionPrefix + short
	switch short {
	case "noop-python":
		return name, action{kind: "python:3", code: noopPython}, nil
	case "noop-nodejs":
		return name, action{kind: "nodejs:20", code: noopNode}, nil
	}
	fx := noopC
	if short == "noop-go-reactor" || short == "web-go-reactor" {
		fx = noopGo
	}
	r.prog.printf("building %s", fx.name)
	code, err := r.fx.get(ctx, fx)
	if err != nil {
		return "", action{}, err
	}
	a := wasmAction(code)
	if short == "web" || short == "web-go-reactor" {
		a.annotations = gust.KeyValues{}.Set("web-export", true)
	}
	return name, a, nil
}

// createAction creates an action on the target and remembers to delete it.
func (r *runner) createAction(ctx context.Context, name string, a action) error {
	r.prog.printf("creating %s", name)
	if err := r.tgt.putAction(ctx, name, a); err != nil {
		return err
	}
	r.created(func(ctx context.Context) error { return r.tgt.api.DeleteAction(ctx, name) })
	return nil
}

// created remembers how to delete an entity the bench created on the
// target: an external node keeps it otherwise.
func (r *runner) created(del func(context.Context) error) {
	r.entities = append(r.entities, del)
}

// warmup is the load run before each measurement and thrown away: it
// opens connections, fills instance pools and lets the previous
// measurement's background work settle.
func (r *runner) warmup() time.Duration { return min(r.opt.duration/5, 200*time.Millisecond) }

// brief is the length of a measurement of the event and scheduling
// scenarios: half the default --duration, so that the default set stays
// within 3 minutes on 2 cores; a --duration given applies as it is.
func (r *runner) brief() time.Duration {
	if r.opt.durSet {
		return r.opt.duration
	}
	return r.opt.duration / 2
}

// plain measures fn as it is. cpu says whether the process's CPU time is
// the system's under test (false for an external node).
func (r *runner) plain(fn op, cpu bool) func(ctx context.Context, c int) ([]variant, error) {
	return r.plainFor(fn, cpu, r.opt.duration)
}

// plainFor is plain, measuring for d.
func (r *runner) plainFor(fn op, cpu bool, d time.Duration) func(ctx context.Context, c int) ([]variant, error) {
	return func(ctx context.Context, c int) ([]variant, error) {
		if w := closedLoop(ctx, c, r.warmup(), fn); w.ops == 0 && w.errs > 0 {
			return nil, w.err
		}
		f := closedLoop(ctx, c, d, fn)
		if !cpu {
			f.cpu = 0
		}
		return []variant{{f: f}}, ctx.Err()
	}
}

// rounds measures the loads: for each concurrency, rounds times each load
// in turn, so that every scenario has a floor measured beside it. A load
// with fewer rounds runs in the first ones, so its round i is beside the
// floor's round i.
func (r *runner) rounds(ctx context.Context, loads []load) error {
	dropped := map[string]bool{}
	for ci, c := range r.opt.conc {
		for round := 1; round <= r.opt.rounds; round++ {
			for _, l := range loads {
				n := r.roundsOf(l)
				if round > n || (l.once && ci > 0) || dropped[l.name] {
					continue
				}
				r.prog.printf("c=%d round %d/%d: %s", c, round, n, l.name)
				vs, err := l.measure(ctx, c)
				var u unavailable
				if errors.As(err, &u) {
					r.markUnavailable(l.name, err.Error())
					dropped[l.name] = true
					continue
				}
				if err != nil {
					return fmt.Errorf("%s at c=%d: %w", l.name, c, err)
				}
				for _, v := range vs {
					vc := cmp.Or(v.conc, c)
					s := r.find(l.name, v.name, vc)
					if s == nil {
						s = r.add(&series{scenario: l.name, variant: v.name, conc: vc})
						switch {
						case v.base != "":
							s.base, s.paired = r.find(l.name, v.base, vc), true
						case !v.own && l.name != "floor-http":
							s.base, s.paired = r.find("floor-http", "", c), true
						}
					}
					s.rounds = append(s.rounds, v.f)
					if v.note != "" {
						s.note = v.note
					}
				}
			}
		}
	}
	return nil
}

// roundsOf returns the number of rounds of load l.
func (r *runner) roundsOf(l load) int {
	if l.rounds > 0 && !r.opt.roundsSet {
		return min(l.rounds, r.opt.rounds)
	}
	return r.opt.rounds
}

func (r *runner) add(s *series) *series {
	r.series = append(r.series, s)
	return s
}

// find returns the series of a scenario, variant and concurrency (0: any).
func (r *runner) find(scenario, variant string, conc int) *series {
	for _, s := range r.series {
		if s.scenario == scenario && s.variant == variant && (conc == 0 || s.conc == conc) {
			return s
		}
	}
	return nil
}

func (r *runner) markUnavailable(name, reason string) {
	r.unavailable = append(r.unavailable, Row{Scenario: name, Reason: reason})
}

// close deletes what the bench created on the target and stops what the
// run started.
func (r *runner) close() {
	for _, c := range slices.Backward(r.closers) {
		c()
	}
	if r.tgt != nil && !r.tgt.inProcess() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, del := range slices.Backward(r.entities) {
			_ = del(ctx)
		}
	}
	if r.floorHTTP != nil {
		r.floorHTTP.close()
	}
	if r.floorNATS != nil {
		r.floorNATS.close()
	}
	if r.tgt != nil {
		r.tgt.close()
	}
}

// progress shows what the bench is doing on one line of a terminal, or
// one line per step elsewhere.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) printf(format string, args ...any) {
	line := fmt.Sprintf("bench [%3.0fs] ", time.Since(p.start).Seconds()) + fmt.Sprintf(format, args...)
	if p.tty {
		fmt.Fprint(p.w, "\r"+line+"\x1b[K")
		return
	}
	fmt.Fprintln(p.w, strings.TrimSpace(line))
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
