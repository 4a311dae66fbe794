package process

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/sandbox"
)

// Interpreter probes. That an interpreter's path is an executable file
// does not mean its kind can run: a pyenv shim or a Python 2 binary passes
// that test, and the first call would then fail with a platform error. So
// New runs each interpreter, the kinds in parallel, twice:
//
//  1. directly, with an empty environment, as `<interpreter> --version`,
//     which must report a version the launcher supports;
//  2. in a sandbox exactly as a worker starts (the same root, mounts,
//     identity, limits and seccomp filter), where the launcher must come up
//     and say it is ready. This catches what only the sandbox sees: an
//     install tree the sandbox's unprivileged uid cannot read (a pyenv
//     build under /root), a library outside the mounts.
//
// A kind failing either is unavailable, with the reason, so creating an
// action of it is refused with that reason. The sandbox of a successful
// probe is a ready stem cell: it becomes the first of its kind's pool, so
// the probe costs nothing when stem cells are on.

// interpreterVersion is the oldest version of each kind's interpreter the
// launcher runs on.
var interpreterVersion = map[string]struct {
	name         string
	re           *regexp.Regexp // matches --version's first line
	major, minor int
}{
	KindPython: {"Python", regexp.MustCompile(`^Python (\d+)\.(\d+)`), 3, 8},
	KindNode:   {"Node.js", regexp.MustCompile(`^v(\d+)\.(\d+)`), 18, 0},
}

// probeTimeout bounds each step of a probe.
const probeTimeout = 15 * time.Second

// probeKinds probes the interpreters of the kinds not already found
// unavailable, records why those failing cannot run, and returns the
// ready sandboxes of the others, by kind.
func (b *Backend) probeKinds() map[string]*worker {
	t0 := time.Now()
	var todo []*runtimeKind
	for _, rt := range b.kinds {
		if rt.interpreter != "" && b.reasons[rt.name] == "" {
			todo = append(todo, rt)
		}
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		ready   = map[string]*worker{}
		reasons = map[string]string{}
	)
	for _, rt := range todo {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()
			w, err := b.probe(ctx, rt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				reasons[rt.name] = err.Error()
				b.log.Warn("process: kind unavailable", "kind", rt.name, "reason", err)
				return
			}
			ready[rt.name] = w
		})
	}
	wg.Wait()
	for kind, why := range reasons {
		b.reasons[kind] = why
	}
	b.log.Debug("process: interpreters probed", "took", time.Since(t0))
	return ready
}

// probe checks that rt's interpreter runs the launcher in a sandbox and
// returns that sandbox, ready for code.
func (b *Backend) probe(ctx context.Context, rt *runtimeKind) (*worker, error) {
	if err := checkVersion(ctx, rt); err != nil {
		return nil, err
	}
	w, err := b.startWorker(ctx, rt, "", b.cfg.StemCellMemoryMB, nil)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "permission denied") {
			hint = " (the sandbox reads the interpreter's install directory as an unprivileged user: it must be readable by others, and its parents searchable)"
		}
		return nil, fmt.Errorf("the interpreter %s cannot run in the sandbox: %v%s", rt.interpreter, err, hint)
	}
	logs := sandbox.NewLogBuffer(4096)
	if err := w.awaitReady(ctx, time.Now().Add(probeTimeout), logs); err != nil {
		oom, status := w.stop(logs)
		w.destroy()
		if errors.Is(err, context.DeadlineExceeded) {
			err = errTimedOut // the probe's own deadline, as ctx's
		}
		how := err.Error() // a wrong first line
		switch fail, _ := classifyFailure(err, oom, false); fail {
		case failTimeout:
			how = fmt.Sprintf("it did not say it was ready within %v", probeTimeout)
		case failMemory:
			how = fmt.Sprintf("it ran out of its %d MB of memory, the stem cells' limit", b.cfg.StemCellMemoryMB)
		case failExited: // it ended before the kill
			how = "it " + status
		}
		return nil, fmt.Errorf("the interpreter %s does not run Gust's launcher in the sandbox (%s): %s", rt.interpreter, how, lastLogs(logs, 3))
	}
	return w, nil
}

// checkVersion runs `interpreter --version` (Python 2 prints it on
// stderr) and checks the version.
func checkVersion(ctx context.Context, rt *runtimeKind) error {
	want := interpreterVersion[rt.name]
	cmd := exec.CommandContext(ctx, rt.interpreter, "--version")
	cmd.Env = []string{} // never the host's: it would hide what the sandbox lacks
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return fmt.Errorf("the interpreter %s does not run: %v (it printed %q)", rt.interpreter, err, first)
	}
	m := want.re.FindStringSubmatch(first)
	if m == nil {
		return fmt.Errorf("the interpreter %s is not %s: --version printed %q", rt.interpreter, want.name, first)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < want.major || major == want.major && minor < want.minor {
		return fmt.Errorf("the interpreter %s is %s; %s needs %s %d.%d or later", rt.interpreter, first, rt.name, want.name, want.major, want.minor)
	}
	return nil
}

// lastLogs returns the text of the last n lines of logs, joined.
func lastLogs(logs *sandbox.LogBuffer, n int) string {
	lines := logs.Lines()
	lines = lines[max(len(lines)-n, 0):]
	texts := make([]string, 0, len(lines))
	for _, l := range lines {
		// "<time> <stream>: <text>"
		if _, text, ok := strings.Cut(l, ": "); ok {
			l = text
		}
		texts = append(texts, strings.TrimSpace(l))
	}
	if len(texts) == 0 {
		return "it said nothing"
	}
	return strings.Join(texts, " / ")
}
