package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// Floors of density: a bare process of each interpreter, asleep.
const (
	floorSleep  = "floor: /bin/sleep 5"
	floorPython = "floor: python3 asleep"
	floorNode   = "floor: node asleep"
)

// densityKind is one kind density measures.
type densityKind struct {
	variant string
	short   string // the bench action (benchAction)
	floor   string
	n       int
}

// densityKinds are the kinds density measures. A C function costs so little
// that it takes a hundred to rise above the noise of the process's memory
// (a few MB between two readings).
var densityKinds = []densityKind{
	{"wasm reactor (Go), per idle warm instance", "noop-go-reactor", floorSleep, 20},
	{"wasm C command, per idle warm function", "noop-c", floorSleep, 100},
	{"python:3, per idle warm instance", "noop-python", floorPython, 10},
	{"nodejs:20, per idle warm instance", "noop-nodejs", floorNode, 10},
}

// density measures the memory an idle warm instance costs, per kind: n new
// actions of the kind (each with a distinct timeout, so each is a function
// of its own with its own instance) are invoked once each, after one more
// that is not counted, and the growth
// of the resident memory (RSS) of this process and of its descendants (the
// sandbox processes) is divided by n. The same module serves every wasm
// action, so their compiled code, shared by wazero, is not counted; a C
// command keeps no instance between calls, so its figure is what an idle
// function costs. The floors are bare processes of the same interpreters
// as floor-exec's, asleep.
func (r *runner) density(ctx context.Context) error {
	if !r.tgt.inProcess() {
		r.markUnavailable("density", "reads the memory of the node's process and its sandboxes: needs the bench's own node (not --apihost)")
		return nil
	}
	if _, err := rssOf(os.Getpid()); err != nil {
		r.markUnavailable("density", "reads process memory from /proc, which is not readable here: "+err.Error())
		return nil
	}
	floors := map[string]*series{}
	for _, f := range densityFloors(ctx) {
		if f.err != nil {
			r.markUnavailable("density", f.variant+": "+f.err.Error())
			continue
		}
		r.prog.printf("density: %s", f.variant)
		rss, err := bareRSS(ctx, f.path, f.args)
		if err != nil {
			r.markUnavailable("density", f.variant+": "+err.Error())
			continue
		}
		mb := float64(rss) / (1 << 20)
		floors[f.variant] = r.add(&series{scenario: "density", variant: f.variant, unit: "MB",
			rounds: []figures{{value: mb, ops: 1}}, note: perGiB(mb)})
	}
	for ki, k := range densityKinds {
		r.prog.printf("density: %s", k.variant)
		_, a, err := r.benchAction(ctx, k.short)
		if err != nil {
			r.markUnavailable("density", k.variant+": "+err.Error())
			continue
		}
		// One more instance first, not counted, so that one-time costs (the
		// module compiled in memory, the kind's first worker) are left out.
		var before memSample
		var failed error
		for i := -1; i < k.n && failed == nil; i++ {
			if i == 0 {
				if before, err = settledMemory(ctx); err != nil {
					return err
				}
			}
			name := fmt.Sprintf("%sdensity-%d-%d", actionPrefix, ki, i+1)
			a.timeoutMS = 30_001 + ki*1000 + i // a function of its own
			if failed = r.tgt.putAction(ctx, name, a); failed == nil {
				r.created(func(ctx context.Context) error { return r.tgt.api.DeleteAction(ctx, name) })
				failed = r.tgt.blocking(r.setup, name).do(ctx, 0)
			}
		}
		if failed != nil {
			r.markUnavailable("density", k.variant+": "+failed.Error())
			continue
		}
		after, err := settledMemory(ctx)
		if err != nil {
			return err
		}
		self := float64(after.self-before.self) / (1 << 20)
		sandboxes := float64(after.sandboxes-before.sandboxes) / (1 << 20)
		mb := (self + sandboxes) / float64(k.n)
		s := &series{scenario: "density", variant: k.variant, unit: "MB", base: floors[k.floor],
			rounds: []figures{{value: max(mb, 0), ops: int64(k.n)}}}
		what := "instances"
		if k.short == "noop-c" {
			what = "functions"
		}
		s.note = fmt.Sprintf("%s; %d %s: node process %+.1f MB, sandboxes %+.1f MB in %+d processes",
			perGiB(mb), k.n, what, self, sandboxes, after.procs-before.procs)
		if mb <= 0 {
			s.note = fmt.Sprintf("no growth beyond the noise; %d %s: node process %+.1f MB, sandboxes %+.1f MB", k.n, what, self, sandboxes)
		}
		r.add(s)
	}
	return nil
}

// perGiB says how many of something of mb fit in 1 GiB.
func perGiB(mb float64) string {
	if mb <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f per GiB", 1024/mb)
}

// densityFloor is a bare process whose memory is a floor.
type densityFloor struct {
	variant string
	path    string
	args    []string
	err     error
}

// densityFloors are the floors of density, with floor-exec's interpreters.
func densityFloors(ctx context.Context) []densityFloor {
	var out []densityFloor
	for _, f := range execFloors(ctx) {
		d := densityFloor{path: f.tool.Path, err: f.err}
		switch f.tool.Name {
		case "python3":
			d.variant, d.args = floorPython, []string{"-c", "import time; time.sleep(5)"}
		case "node":
			d.variant, d.args = floorNode, []string{"-e", "setTimeout(() => {}, 5000)"}
		default:
			d.variant, d.path, d.args = floorSleep, "/bin/sleep", []string{"5"}
			if _, err := os.Stat(d.path); err != nil {
				d.err = err
			}
		}
		out = append(out, d)
	}
	return out
}

// bareRSS starts path with args and an empty environment, waits until its
// resident memory stops growing (it has started up and sleeps) and returns
// it, then kills the process.
func bareRSS(ctx context.Context, path string, args []string) (int64, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var last int64
	same := 0
	for start := time.Now(); time.Since(start) < 4*time.Second; {
		time.Sleep(20 * time.Millisecond)
		rss, err := rssOf(cmd.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("%s exited early: %w", path, err)
		}
		if rss == last {
			if same++; same >= 5 && time.Since(start) > 200*time.Millisecond {
				return rss, nil
			}
		} else {
			last, same = rss, 0
		}
	}
	return 0, fmt.Errorf("the memory of %s did not settle within 4s", path)
}

// memSample is the resident memory of this process and of its descendants.
type memSample struct {
	self      int64 // bytes
	sandboxes int64 // bytes, summed over the descendants
	procs     int   // descendants
}

// settledMemory waits until the descendants' memory and number stop
// changing (the process backend replaces a stem cell in the background
// after one was taken) and returns it with this process's own, read after
// garbage collections that return freed memory to the system, so that
// garbage not yet collected is not counted.
func settledMemory(ctx context.Context) (memSample, error) {
	var last memSample
	same := 0
	for start := time.Now(); ; {
		s, err := descendantsMemory("/proc", os.Getpid())
		if err != nil {
			return memSample{}, err
		}
		if s.procs == last.procs && s.sandboxes == last.sandboxes {
			same++
		} else {
			last, same = s, 0
		}
		if same >= 3 || time.Since(start) > 5*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return memSample{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The median of three readings, each after a collection.
	var selves []float64
	for range 3 {
		runtime.GC()
		debug.FreeOSMemory()
		self, err := rssOf(os.Getpid())
		if err != nil {
			return memSample{}, err
		}
		selves = append(selves, float64(self))
	}
	last.self = int64(median(selves))
	return last, nil
}

// descendantsMemory sums the RSS of the descendants of root as proc (the
// /proc directory) lists them.
func descendantsMemory(proc string, root int) (memSample, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return memSample{}, err
	}
	parents := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if ppid, ok := parsePPID(b); ok {
			parents[pid] = ppid
		}
	}
	var s memSample
	for _, pid := range descendants(parents, root) {
		rss, err := rssOf(pid)
		if err != nil {
			continue // gone meanwhile
		}
		s.sandboxes += rss
		s.procs++
	}
	return s, nil
}

// parsePPID reads the parent pid from the contents of /proc/PID/stat:
// "pid (comm) state ppid …", where comm may hold spaces and parentheses.
func parsePPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(f[1]))
	return ppid, err == nil
}

// descendants returns the processes below root in the tree of parents.
func descendants(parents map[int]int, root int) []int {
	children := map[int][]int{}
	for pid, ppid := range parents {
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	seen := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// rssOf returns the resident memory of process pid in bytes, from
// /proc/PID/statm (pages).
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	return parseStatmRSS(b, os.Getpagesize())
}

// parseStatmRSS reads the resident size from /proc/PID/statm contents.
func parseStatmRSS(statm []byte, pageSize int) (int64, error) {
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return 0, errors.New("statm: too few fields")
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm: %w", err)
	}
	return pages * int64(pageSize), nil
}
