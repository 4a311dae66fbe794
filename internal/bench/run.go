package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// runner carries one run of the bench.
type runner struct {
	opt      options
	prog     *progress
	fx       *fixtures
	cacheDir string // os.UserCacheDir()/gust/bench

	tgt       *target
	setup     *http.Client // actions, polling
	floorHTTP *floorHTTP
	floorNATS *floorNATS
	actions   []string // created on the target, deleted at the end

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
}

type variant struct {
	name string
	f    figures
}

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
	var err error
	if r.opt.apihost != "" {
		r.tgt, err = externalTarget(r.opt.apihost, r.opt.auth)
	} else {
		r.prog.printf("starting a node")
		r.tgt, err = startNode(ctx, filepath.Join(r.cacheDir, "wazero"))
	}
	if err != nil {
		return nil, err
	}
	rep.Target = r.tgt.describe()

	has := func(name string) bool {
		return slices.ContainsFunc(selected, func(s scenario) bool { return s.name == name && s.unavailable == "" })
	}
	var loads []load
	for _, s := range selected {
		if s.unavailable != "" {
			r.markUnavailable(s.name, s.unavailable)
			continue
		}
		l, err := r.prepareLoad(ctx, s.name)
		if err != nil {
			r.markUnavailable(s.name, err.Error())
			continue
		}
		if l != nil {
			loads = append(loads, *l)
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
	if has("activation-store") {
		if err := r.store(ctx); err != nil {
			return nil, fmt.Errorf("activation-store: %w", err)
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
	case "invoke-wasm-c", "invoke-wasm-reactor", "invoke-python", "invoke-nodejs", "web-action":
		action, a, err := r.benchAction(ctx, scenarioAction[name])
		if err != nil {
			return nil, err
		}
		if err := r.createAction(ctx, action, a); err != nil {
			return nil, err
		}
		req := r.tgt.blocking(newClient(conns), action)
		if name == "web-action" {
			ns, err := r.tgt.namespace(ctx, r.setup)
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
	}
	return nil, nil
}

// The bench's actions: each load scenario's, by the name it is created as.
var scenarioAction = map[string]string{
	"invoke-wasm-c": "noop-c", "invoke-wasm-reactor": "noop-go-reactor",
	"invoke-python": "noop-python", "invoke-nodejs": "noop-nodejs", "web-action": "web",
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
	if short == "noop-go-reactor" {
		fx = noopGo
	}
	r.prog.printf("building %s", fx.name)
	code, err := r.fx.get(ctx, fx)
	if err != nil {
		return "", action{}, err
	}
	a := wasmAction(code)
	if short == "web" {
		a.annotations = map[string]any{"web-export": true}
	}
	return name, a, nil
}

// createAction creates an action on the target and remembers to delete it.
func (r *runner) createAction(ctx context.Context, name string, a action) error {
	r.prog.printf("creating %s", name)
	if err := r.tgt.putAction(ctx, r.setup, name, a); err != nil {
		return err
	}
	r.actions = append(r.actions, name)
	return nil
}

// warmup is the load run before each measurement and thrown away: it
// opens connections, fills instance pools and lets the previous
// measurement's background work settle.
func (r *runner) warmup() time.Duration { return min(r.opt.duration/5, 200*time.Millisecond) }

// plain measures fn as it is. cpu says whether the process's CPU time is
// the system's under test (false for an external node).
func (r *runner) plain(fn op, cpu bool) func(ctx context.Context, c int) ([]variant, error) {
	return func(ctx context.Context, c int) ([]variant, error) {
		if w := closedLoop(ctx, c, r.warmup(), fn); w.ops == 0 && w.errs > 0 {
			return nil, w.err
		}
		f := closedLoop(ctx, c, r.opt.duration, fn)
		if !cpu {
			f.cpu = 0
		}
		return []variant{{"", f}}, ctx.Err()
	}
}

// rounds measures the loads: for each concurrency, rounds times each load
// in turn, so that every scenario has a floor measured beside it.
func (r *runner) rounds(ctx context.Context, loads []load) error {
	for _, c := range r.opt.conc {
		for round := 1; round <= r.opt.rounds; round++ {
			for _, l := range loads {
				r.prog.printf("c=%d round %d/%d: %s", c, round, r.opt.rounds, l.name)
				vs, err := l.measure(ctx, c)
				if err != nil {
					return fmt.Errorf("%s at c=%d: %w", l.name, c, err)
				}
				for _, v := range vs {
					s := r.find(l.name, v.name, c)
					if s == nil {
						s = r.add(&series{scenario: l.name, variant: v.name, conc: c})
						if l.name != "floor-http" {
							s.base, s.paired = r.find("floor-http", "", c), true
						}
					}
					s.rounds = append(s.rounds, v.f)
				}
			}
		}
	}
	return nil
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

// close deletes the bench's actions and stops what the run started.
func (r *runner) close() {
	if r.tgt != nil && !r.tgt.inProcess() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, a := range r.actions {
			_ = r.tgt.deleteAction(ctx, r.setup, a)
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
