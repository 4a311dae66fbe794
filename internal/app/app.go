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
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/process"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
	"github.com/gust-faas/gust/internal/scheduler"
	"github.com/gust-faas/gust/internal/store"
	"github.com/gust-faas/gust/internal/trigger"
)

// DefaultNamespace is the namespace `gust up` creates for users.
const DefaultNamespace = "guest"

// AdminNamespace is the administrator's namespace: its credential may
// create namespaces and set their limits.
const AdminNamespace = "admin"

// Config is everything `gust up` can be told. Each field has one name
// everywhere: field DataDir, flag --data-dir, env GUST_DATA_DIR.
type Config struct {
	DataDir string // where all state lives
	Addr    string // API listen address, default 127.0.0.1:3233
	Auth    string // "uuid:key" of the guest namespace; generated once when empty
	// AdminAuth is the administrator's "uuid:key"; generated once when empty
	// and saved as DataDir/admin.auth.
	AdminAuth string
	// Listener, when set, is used instead of listening on Addr (tests pass 127.0.0.1:0).
	Listener net.Listener
	Logger   *slog.Logger

	Limits gust.SystemLimits // zero: gust.DefaultLimits()

	SyncAlways         bool            // fsync every JetStream write
	NATSMaxMemory      int64           // bytes
	NATSMaxStore       int64           // bytes
	ActivationMaxAge   time.Duration   // retention of activation records, default 7 days
	ActivationMaxCount int64           // records kept, default 1,000,000
	AsyncWorkers       int             // non-blocking activations run at once, default 16
	InvokerMemoryMB    int             // memory the invoker's activations may reserve; default half the machine
	DrainTimeout       time.Duration   // how long shutdown waits for running activations, default 60s
	NodeName           string          // names this node's invokers (NodeName-0, -1, …); default the host name
	Invokers           int             // invokers in this process, default 1 (tests run several)
	HeartbeatTTL       time.Duration   // an invoker silent this long is dropped; default 3s
	QueueAckWait       time.Duration   // a queued invocation whose worker went silent this long is redelivered; default 30s
	WasmCacheDir       string          // compiled wasm cache; default DataDir/wasm-cache
	WasmDirs           []wasm.DirGrant // host directories granted to namespaces' wasm actions
	// Python and Node are the interpreters of the python:3 and nodejs:20
	// kinds; defaults /usr/bin/python3 and /usr/bin/node, never a PATH lookup.
	Python, Node string
	StemCells    int // prewarmed code-less workers per interpreter kind; 0: default, negative: none
	// Process sandbox settings (process.Config); zero: its defaults.
	SandboxTmpMB, SandboxPids, WorkersPerFunction int
	SandboxCPUs                                   float64
	NoZygote                                      bool
	// KeepAlive is the keep-alive policy of idle functions: "fixed:DURATION"
	// (default fixed:10m, as OpenWhisk) or "hybrid" (the hybrid histogram
	// policy of Shahrad et al., learning each action's idle times).
	KeepAlive string
	// MQTTAddr opens the embedded server's MQTT listener for devices
	// (host:port); "" for none. Devices log in with a namespace's UUID and key.
	MQTTAddr string
	// NATSAddr opens the embedded server's NATS client port for services
	// (host:port); "" for none. Clients log in as devices do.
	NATSAddr string
	Build    string
}

// App is a running node.
type App struct {
	cfg     Config
	log     *slog.Logger
	release func()

	Broker      *broker.Broker
	Entities    *store.Entities
	Keys        *store.Keys
	Routes      *store.Routes
	Activations *store.Activations
	Invoker     *invoker.Invoker
	Service     *activation.Service
	Triggers    *trigger.Firer
	Feeds       *trigger.Feeds
	devices     trigger.Devices
	Guest       *store.Identity
	Admin       *store.Identity
	Metrics     *metrics.Registry

	wasm     *wasm.Backend
	process  *process.Backend
	ln       net.Listener
	http     *http.Server
	serveErr chan error
	workCtx  context.Context
	stopWork context.CancelFunc
	registry *scheduler.Registry

	// Invokers run activations; the first one's service also serves the API.
	Invokers []*InvokerRole
}

// InvokerRole is one invoker of this node and the service that feeds it.
type InvokerRole struct {
	ID      string
	Invoker *invoker.Invoker
	Service *activation.Service
	done    chan error
}

// Registry lists the live invokers.
func (a *App) Registry() *scheduler.Registry { return a.registry }

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
	if cfg.Invokers <= 0 {
		cfg.Invokers = 1
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = scheduler.DefaultTTL
	}
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
		if cfg.NodeName == "" {
			cfg.NodeName = "gust"
		}
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
	a = &App{cfg: cfg, log: log, release: release, Metrics: metrics.New()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	var clientAuth func(user, password string) ([]string, bool)
	if cfg.MQTTAddr != "" || cfg.NATSAddr != "" {
		clientAuth = a.devices.Check
	}
	a.Broker, err = broker.Start(ctx, broker.Config{
		DataDir: cfg.DataDir, ServerName: "gust", MaxMemory: cfg.NATSMaxMemory, MaxStore: cfg.NATSMaxStore,
		SyncAlways: cfg.SyncAlways, Logger: log, MQTTAddr: cfg.MQTTAddr, NATSAddr: cfg.NATSAddr, ClientAuth: clientAuth,
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
	a.devices.SetKeys(a.Keys)
	if a.Routes, err = store.OpenRoutes(ctx, js, reps, log); err != nil {
		return nil, err
	}
	if a.Activations, err = store.OpenActivations(ctx, a.Broker.Conn, js, store.ActivationsConfig{
		MaxAge: cfg.ActivationMaxAge, MaxMsgs: cfg.ActivationMaxCount, Replicas: reps,
	}, log); err != nil {
		return nil, err
	}
	a.Activations.SetRecordNamer(a.Entities)
	if a.Guest, err = a.Keys.Ensure(ctx, DefaultNamespace, cfg.Auth); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", DefaultNamespace, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "guest.auth"), []byte(a.Guest.Auth()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save credentials: %w", err)
	}
	if a.Admin, err = a.Keys.EnsureAdmin(ctx, AdminNamespace, cfg.AdminAuth); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", AdminNamespace, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "admin.auth"), []byte(a.Admin.Auth()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save credentials: %w", err)
	}

	wasmCache := cfg.WasmCacheDir
	if wasmCache == "" {
		wasmCache = filepath.Join(cfg.DataDir, "wasm-cache")
	}
	if a.wasm, err = wasm.New(wasm.Config{CacheDir: wasmCache, Logger: log, Dirs: cfg.WasmDirs}); err != nil {
		return nil, err
	}
	feedStore, err := store.OpenFeeds(ctx, js, reps)
	if err != nil {
		return nil, err
	}
	if err := trigger.Provision(ctx, a.Entities, time.Now().UnixMilli()); err != nil {
		return nil, err
	}
	a.Feeds = trigger.New(trigger.Config{Entities: a.Entities, Keys: a.Keys, Store: feedStore, Records: a.Activations,
		Conn: a.Broker.Conn, Node: cfg.NodeName, Logger: log})
	queue, err := activation.OpenQueue(ctx, js, reps)
	if err != nil {
		return nil, err
	}
	if a.registry, err = scheduler.OpenRegistry(ctx, js, reps, cfg.HeartbeatTTL, log); err != nil {
		return nil, err
	}
	apiHost := "http://" + cfg.Addr
	if cfg.Listener != nil {
		apiHost = "http://" + cfg.Listener.Addr().String()
	}
	if a.process, err = process.New(process.Config{
		Logger: log, Python: cfg.Python, Node: cfg.Node, StemCells: cfg.StemCells,
		TmpMB: cfg.SandboxTmpMB, Pids: cfg.SandboxPids, CPUs: cfg.SandboxCPUs, MaxWorkersPerFunction: cfg.WorkersPerFunction, NoZygote: cfg.NoZygote,
		Env: map[string]string{"__OW_API_HOST": apiHost},
		// The invoker closes idle workers by its keep-alive policy; the
		// backend's own timeout only catches what it misses.
		IdleTimeout: 24 * time.Hour,
	}); err != nil {
		return nil, err
	}
	a.workCtx, a.stopWork = context.WithCancel(context.Background())
	// One throttle per process: a queued activation takes its namespace's
	// slot on whichever service runs it.
	throttle := activation.NewThrottle()
	for i := range cfg.Invokers {
		id := store.Token(fmt.Sprintf("%s-%d", cfg.NodeName, i))
		policy, err := keepalive.Parse(cfg.KeepAlive)
		if err != nil {
			return nil, err
		}
		inv := invoker.New(invoker.Config{
			KeepAlive:     policy,
			Backends:      []sandbox.Backend{a.wasm, a.process},
			MaxResultSize: cfg.Limits.MaxResultSize,
			MemoryMB:      cfg.InvokerMemoryMB,
			ID:            id,
			Metrics:       a.Metrics,
			Logger:        log.With("invoker", id),
		})
		svcCfg := activation.Config{
			Entities: a.Entities, Keys: a.Keys, Records: a.Activations, Runner: inv,
			Queue: queue, Limits: cfg.Limits, Logger: log.With("invoker", id), AckWait: cfg.QueueAckWait, Metrics: a.Metrics,
			Builtin: a.Feeds, Throttle: throttle,
		}
		if i == 0 {
			// The first invoker's service is also the API's: it places
			// blocking activations on every live invoker.
			svcCfg.Placement = &activation.Placement{Self: id, Registry: a.registry, Conn: a.Broker.Conn, LocalFree: inv.FreeMemory}
		}
		r := &InvokerRole{ID: id, Invoker: inv, Service: activation.New(svcCfg), done: make(chan error, 1)}
		a.Invokers = append(a.Invokers, r)
		if err := r.Service.Serve(a.workCtx, a.Broker.Conn, id); err != nil {
			return nil, err
		}
		go func() { r.done <- r.Service.Work(a.workCtx, a.Activations, cfg.AsyncWorkers) }()
		go a.registry.Heartbeats(a.workCtx, r.Service.Dead(), cfg.HeartbeatTTL/3, func() scheduler.Heartbeat {
			return scheduler.Heartbeat{ID: id, MemoryMB: cfg.InvokerMemoryMB, FreeMB: inv.FreeMemory(), Kinds: inv.Kinds()}
		})
	}
	a.Invoker, a.Service = a.Invokers[0].Invoker, a.Invokers[0].Service
	a.Triggers = trigger.NewFirer(trigger.FirerConfig{
		Entities: a.Entities, Invoker: a.Service, Records: a.Activations, Limits: cfg.Limits, Logger: log,
	})
	if err := a.Feeds.Start(ctx, a.Triggers); err != nil {
		return nil, fmt.Errorf("feeds: %w", err)
	}
	go a.collectCode(a.workCtx, log)

	a.ln = cfg.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
	}
	a.http = &http.Server{
		Handler: api.New(api.Config{
			Entities: a.Entities, Keys: a.Keys, Activations: a.Activations, Invoker: a.Service, DeadLetters: a.Service,
			Routes: a.Routes, Triggers: a.Triggers,
			Runtimes: a.Invoker, Limits: cfg.Limits, Logger: log, Build: cfg.Build, Metrics: a.Metrics,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.http.Serve(a.ln) }()

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
	for _, r := range a.Invokers {
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		if err := r.Service.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain activations of %s: %w", r.ID, err))
		}
	}
	a.close()
	return errors.Join(errs...)
}

// close releases everything in reverse order of creation.
func (a *App) close() {
	if a.stopWork != nil {
		a.stopWork()
	}
	if a.Feeds != nil {
		a.Feeds.Close() // before the stores its providers write to
	}
	for _, r := range a.Invokers {
		r.Invoker.Close(context.Background())
	}
	if a.registry != nil {
		a.registry.Close()
	}
	if a.wasm != nil {
		_ = a.wasm.Close(context.Background())
	}
	if a.process != nil {
		_ = a.process.Close(context.Background())
	}
	if a.Activations != nil {
		a.Activations.Close()
	}
	if a.Routes != nil {
		a.Routes.Close()
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

// codeGrace is how old unreferenced stored code must be before it is
// removed: longer than any create in progress takes.
const codeGrace = time.Hour

// collectCode removes stored code of deleted or updated actions, at start
// and then hourly, until ctx ends.
func (a *App) collectCode(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(codeGrace)
	defer t.Stop()
	for {
		if n, err := a.Entities.CollectCode(ctx, codeGrace); err != nil {
			log.Warn("removing unused code", "err", err)
		} else if n > 0 {
			log.Info("removed unused code", "objects", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
