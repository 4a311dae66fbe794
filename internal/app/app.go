// Package app wires Gust's roles together: the broker, the stores, the
// invoker with its sandboxes, the activation service and the REST API. It
// is the only package that knows every concrete type.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/api"
	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/store"
)

// DefaultNamespace is the namespace `gust up` creates.
const DefaultNamespace = "guest"

// Config is everything `gust up` can be told. Each field has one name
// everywhere: field DataDir, flag --data-dir, env GUST_DATA_DIR.
type Config struct {
	DataDir string // where all state lives
	Addr    string // API listen address, default 127.0.0.1:3233
	Auth    string // "uuid:key" of the guest namespace; generated once when empty
	// Listener, when set, is used instead of listening on Addr (tests pass 127.0.0.1:0).
	Listener net.Listener
	Logger   *slog.Logger

	Limits gust.SystemLimits // zero: gust.DefaultLimits()

	SyncAlways         bool          // fsync every JetStream write
	NATSMaxMemory      int64         // bytes
	NATSMaxStore       int64         // bytes
	ActivationMaxAge   time.Duration // retention of activation records, default 7 days
	ActivationMaxCount int64         // records kept, default 1,000,000
	AsyncWorkers       int           // non-blocking activations run at once, default 16
	InvokerMemoryMB    int           // memory the invoker's activations may reserve; default half the machine
	DrainTimeout       time.Duration // how long shutdown waits for running activations, default 60s
	Build              string
}

// App is a running node.
type App struct {
	cfg     Config
	log     *slog.Logger
	release func()

	Broker      *broker.Broker
	Entities    *store.Entities
	Keys        *store.Keys
	Activations *store.Activations
	Invoker     *invoker.Invoker
	Service     *activation.Service
	Guest       *store.Identity

	wasm     *wasm.Backend
	ln       net.Listener
	http     *http.Server
	serveErr chan error
	workCtx  context.Context
	stopWork context.CancelFunc
	workDone chan error
}

// Start brings a node up and starts serving; it returns once the API
// listens. Call Shutdown to stop it.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:3233"
	}
	if cfg.Limits == (gust.SystemLimits{}) {
		cfg.Limits = gust.DefaultLimits()
	}
	if cfg.AsyncWorkers <= 0 {
		cfg.AsyncWorkers = 16
	}
	if cfg.InvokerMemoryMB <= 0 {
		cfg.InvokerMemoryMB = DefaultInvokerMemoryMB()
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 60 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a = &App{cfg: cfg, log: log, release: release}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	a.Broker, err = broker.Start(ctx, broker.Config{
		DataDir: cfg.DataDir, ServerName: "gust", MaxMemory: cfg.NATSMaxMemory, MaxStore: cfg.NATSMaxStore,
		SyncAlways: cfg.SyncAlways, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	js, reps := a.Broker.JS, a.Broker.Replicas
	if a.Entities, err = store.OpenEntities(ctx, js, reps, log); err != nil {
		return nil, err
	}
	if a.Keys, err = store.OpenKeys(ctx, js, reps, log); err != nil {
		return nil, err
	}
	if a.Activations, err = store.OpenActivations(ctx, a.Broker.Conn, js, store.ActivationsConfig{
		MaxAge: cfg.ActivationMaxAge, MaxMsgs: cfg.ActivationMaxCount, Replicas: reps,
	}, log); err != nil {
		return nil, err
	}
	if a.Guest, err = a.Keys.Ensure(ctx, DefaultNamespace, cfg.Auth); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", DefaultNamespace, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "guest.auth"), []byte(a.Guest.Auth()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save credentials: %w", err)
	}

	if a.wasm, err = wasm.New(wasm.Config{CacheDir: filepath.Join(cfg.DataDir, "wasm-cache"), Logger: log}); err != nil {
		return nil, err
	}
	a.Invoker = invoker.New(invoker.Config{
		Backends:      []sandbox.Backend{a.wasm},
		MaxResultSize: cfg.Limits.MaxResultSize,
		MemoryMB:      cfg.InvokerMemoryMB,
		Logger:        log,
	})
	queue, err := activation.OpenQueue(ctx, js, reps)
	if err != nil {
		return nil, err
	}
	a.Service = activation.New(activation.Config{
		Entities: a.Entities, Keys: a.Keys, Records: a.Activations, Runner: a.Invoker,
		Queue: queue, Limits: cfg.Limits, Logger: log,
	})

	a.ln = cfg.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
	}
	a.http = &http.Server{
		Handler: api.New(api.Config{
			Entities: a.Entities, Keys: a.Keys, Activations: a.Activations, Invoker: a.Service, DeadLetters: a.Service,
			Runtimes: a.Invoker, Limits: cfg.Limits, Logger: log, Build: cfg.Build,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.http.Serve(a.ln) }()

	a.workCtx, a.stopWork = context.WithCancel(context.Background())
	a.workDone = make(chan error, 1)
	go func() { a.workDone <- a.Service.Work(a.workCtx, a.Activations, cfg.AsyncWorkers) }()
	return a, nil
}

// URL is the API's base URL, e.g. http://127.0.0.1:3233.
func (a *App) URL() string { return "http://" + a.ln.Addr().String() }

// Serving reports a fatal error of the HTTP server.
func (a *App) Serving() <-chan error { return a.serveErr }

// Shutdown stops taking requests, lets running activations finish (up to
// the drain timeout or ctx), writes every pending record and closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	if err := a.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	a.stopWork()
	select {
	case <-a.workDone:
	case <-ctx.Done():
	}
	if err := a.Service.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain activations: %w", err))
	}
	a.close()
	return errors.Join(errs...)
}

// close releases everything in reverse order of creation.
func (a *App) close() {
	if a.Invoker != nil {
		a.Invoker.Close(context.Background())
	}
	if a.wasm != nil {
		_ = a.wasm.Close(context.Background())
	}
	if a.Activations != nil {
		a.Activations.Close()
	}
	if a.Keys != nil {
		a.Keys.Close()
	}
	if a.Entities != nil {
		a.Entities.Close()
	}
	if a.Broker != nil {
		a.Broker.Close()
	}
	if a.release != nil {
		a.release()
	}
}

// DefaultInvokerMemoryMB is half the machine's memory, at least 1 GB: the
// rest is left to the platform, the page cache and other tenants of the host.
func DefaultInvokerMemoryMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		var kb int
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				return max(kb/1024/2, 1024)
			}
		}
	}
	return 2048
}
