package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/sandbox/process"
)

// floorHTTP is a bare net/http server that answers every request with a
// small JSON object: what any Go HTTP service pays, and the bar the invoke
// path is measured against.
type floorHTTP struct {
	srv *http.Server
	url string
}

func startFloorHTTP() (*floorHTTP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &floorHTTP{url: "http://" + ln.Addr().String()}
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *floorHTTP) close() { _ = f.srv.Close() }

// request returns the floor's request: the same method, body and headers
// as a blocking invoke.
func (f *floorHTTP) request(c *http.Client, auth string) *request {
	return &request{client: c, method: http.MethodPost, url: f.url + actionPath(actionPrefix+"floor") + "?blocking=true&result=true",
		auth: auth, body: invokeBody, want: http.StatusOK}
}

// floorNATS measures a request-reply round trip on an embedded NATS
// server: the node's own when it runs in-process, else one started for the
// bench. Requester and responder have their own in-process connections.
type floorNATS struct {
	own       *broker.Broker
	dir       string
	req, resp *nats.Conn
}

const floorSubject = "gust.bench.echo"

func startFloorNATS(ctx context.Context, b *broker.Broker) (*floorNATS, error) {
	f := &floorNATS{}
	if b == nil {
		dir, err := os.MkdirTemp("", "gust-bench-nats")
		if err != nil {
			return nil, err
		}
		f.dir = dir
		if f.own, err = broker.Start(ctx, broker.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)}); err != nil {
			f.close()
			return nil, err
		}
		b = f.own
	}
	var err error
	if f.resp, err = b.Connect("gust-bench-responder"); err == nil {
		f.req, err = b.Connect("gust-bench-requester")
	}
	if err == nil {
		_, err = f.resp.Subscribe(floorSubject, func(m *nats.Msg) { _ = m.Respond(m.Data) })
	}
	if err == nil {
		err = f.resp.Flush()
	}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("floor-nats: %w", err)
	}
	return f, nil
}

func (f *floorNATS) do(ctx context.Context, _ int) error {
	_, err := f.req.RequestWithContext(ctx, floorSubject, invokeBody)
	return err
}

func (f *floorNATS) close() {
	for _, c := range []*nats.Conn{f.req, f.resp} {
		if c != nil {
			c.Close()
		}
	}
	if f.own != nil {
		f.own.Close()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// execFloor is one command whose fork+exec+wait is a start-up floor.
type execFloor struct {
	variant string
	tool    Tool
	args    []string
	err     error // why it cannot run
}

// execFloors finds the commands of floor-exec: the interpreters the
// bench's node runs (process.DefaultPython and DefaultNode), not whatever
// comes first on PATH (a pyenv shim costs several times more); PATH only
// when the default is missing, and the report says so. Each runs with an
// empty environment: NODE_EXTRA_CA_CERTS alone triples node's start-up.
func execFloors(ctx context.Context) []execFloor {
	python, pythonNote := interpreter(process.DefaultPython, "python3")
	node, nodeNote := interpreter(process.DefaultNode, "node")
	floors := []execFloor{
		{variant: "python3 -c pass", tool: Tool{Name: "python3", Path: python, Note: pythonNote + ", empty environment"}, args: []string{"-c", "pass"}},
		{variant: "node -e 0", tool: Tool{Name: "node", Path: node, Note: nodeNote + ", empty environment"}, args: []string{"-e", "0"}},
		{variant: "/bin/true", tool: Tool{Name: "true", Path: "/bin/true"}},
	}
	for i := range floors {
		f := &floors[i]
		if f.err != nil {
			continue
		}
		if _, err := os.Stat(f.tool.Path); err != nil {
			f.err = err
			continue
		}
		if r, err := filepath.EvalSymlinks(f.tool.Path); err == nil {
			f.tool.Resolved = r
		}
		if f.tool.Name != "true" {
			cmd := exec.CommandContext(ctx, f.tool.Path, "--version")
			cmd.Env = []string{}
			out, err := cmd.CombinedOutput()
			if err != nil {
				f.err = fmt.Errorf("%s --version: %w", f.tool.Path, err)
				continue
			}
			f.tool.Version = strings.TrimSpace(string(out))
		}
	}
	return floors
}

// interpreter returns def, or the first name on PATH when def is missing,
// with a note saying which.
func interpreter(def, name string) (path, note string) {
	if _, err := os.Stat(def); err == nil {
		return def, "the sandbox's default"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, "first " + name + " on PATH: " + def + " is missing"
	}
	return def, def + " is missing" // the floor's stat reports it
}

// run starts the command once and waits for it.
func (f *execFloor) run(ctx context.Context, _ int) error {
	cmd := exec.CommandContext(ctx, f.tool.Path, f.args...)
	cmd.Env = []string{} // empty, not inherited (nil would inherit)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s: %w", f.variant, err)
		}
		return err
	}
	return nil
}

// execFloor measures floor-exec: each command run one at a time for the
// run's duration. CPU is not reported: it is the children's, not ours.
func (r *runner) execFloor(ctx context.Context) error {
	for _, f := range execFloors(ctx) {
		if f.err != nil {
			r.markUnavailable("floor-exec", f.variant+": "+f.err.Error())
			continue
		}
		r.tools = append(r.tools, f.tool)
		r.prog.printf("floor-exec: %s", f.variant)
		fig := closedLoop(ctx, 1, r.opt.duration, f.run)
		if fig.ops == 0 {
			return fmt.Errorf("floor-exec %s: %w", f.variant, fig.err)
		}
		fig.cpu = 0
		r.add(&series{scenario: "floor-exec", variant: f.variant, conc: 1, rounds: []figures{fig}})
	}
	return nil
}
