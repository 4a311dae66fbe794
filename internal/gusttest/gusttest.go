// Package gusttest starts a whole Gust node in-process for tests: a temp
// data directory, the API on 127.0.0.1:0, the real embedded NATS server and
// the real sandboxes.
package gusttest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// Node is a running node.
type Node struct {
	*app.App
	URL     string // http://127.0.0.1:PORT
	Auth    string // "uuid:key" of the guest namespace
	DataDir string
}

// Option changes the node's configuration.
type Option func(*app.Config)

// Start starts a node that is shut down when the test ends. With no
// options it uses a fresh temp data directory.
func Start(t testing.TB, opts ...Option) *Node {
	t.Helper()
	cfg := app.Config{DataDir: t.TempDir(), DrainTimeout: 10 * time.Second, Limits: TestLimits(),
		// Compiled modules are shared across tests and runs: compiling a Go
		// guest takes seconds, tens of seconds under -race.
		WasmCacheDir: wasmtest.CacheDir(t),
		// No prewarmed interpreters unless a test asks (WithStemCells):
		// most tests never run Python or Node, and starting them costs.
		StemCells: -1}
	if os.Getenv("GUST_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := StartConfig(cfg)
	if err != nil {
		t.Fatalf("start gust node: %v", err)
	}
	t.Cleanup(func() { n.Stop(t) })
	return n
}

// StartConfig starts a node with cfg, listening on 127.0.0.1:0; the caller stops it.
func StartConfig(cfg app.Config) (*Node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg.Listener = ln
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Node{App: a, URL: a.URL(), Auth: a.Guest.Auth(), DataDir: cfg.DataDir}, nil
}

// Stop shuts the node down gracefully (idempotent).
func (n *Node) Stop(t testing.TB) {
	if n.App == nil {
		return
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	n.App = nil
}

// TestLimits are the default limits with throttles high enough that test
// suites never meet them; throttling tests set their own.
func TestLimits() gust.SystemLimits {
	l := gust.DefaultLimits()
	l.InvocationsPerMinute = 1_000_000
	l.ConcurrentInvocations = 10_000
	l.FiresPerMinute = 1_000_000
	return l
}

// WithLimits sets the system limits.
func WithLimits(l gust.SystemLimits) Option { return func(c *app.Config) { c.Limits = l } }

// WithStemCells keeps n prewarmed workers per interpreter kind.
func WithStemCells(n int) Option { return func(c *app.Config) { c.StemCells = n } }

// WithDataDir uses dir (e.g. to restart on the same data).
func WithDataDir(dir string) Option { return func(c *app.Config) { c.DataDir = dir } }

// WithAuth sets the guest credential.
func WithAuth(auth string) Option { return func(c *app.Config) { c.Auth = auth } }

// Do sends an authenticated request to the node's API.
func (n *Node) Do(t testing.TB, method, path string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	uuid, key, _ := strings.Cut(n.Auth, ":")
	req.SetBasicAuth(uuid, key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}
