package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/sandbox/process"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
)

// upSettings are the settings of `gust up`; each has one name everywhere:
// flag --data-dir, env GUST_DATA_DIR.
type upSettings struct {
	dataDir    string
	addr       string
	auth       string
	logLevel   string
	syncAlways bool
	retention  time.Duration
	maxRecords int64
	drain      time.Duration
	perMinute  int
	concurrent int
	invokerMB  int
	keepAlive  string
	python     string
	node       string
	stemCells  int
	mqttAddr   string
	natsAddr   string
	wasmDirs   []wasm.DirGrant
	tmpMB      int
	pids       int
	workers    int
	cpus       float64
	noZygote   bool
}

// envInt reads an integer setting from the environment, def when unset.
func envInt(name string, def int) (int, error) {
	n, err := strconv.Atoi(envOr(name, strconv.Itoa(def)))
	if err != nil {
		return 0, usageError{fmt.Errorf("%s: %w", name, err)}
	}
	return n, nil
}

// envBool reads a true/false setting from the environment, def when unset.
func envBool(name string, def bool) (bool, error) {
	b, err := strconv.ParseBool(envOr(name, strconv.FormatBool(def)))
	if err != nil {
		return false, usageError{fmt.Errorf("%s: want true or false, got %q", name, os.Getenv(name))}
	}
	return b, nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".gust/data"
	}
	return filepath.Join(home, ".gust", "data")
}

func parseUp(args []string, stderr io.Writer) (upSettings, error) {
	var s upSettings
	fs := flag.NewFlagSet("gust up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.dataDir, "data-dir", envOr("GUST_DATA_DIR", defaultDataDir()), "directory holding all state (env GUST_DATA_DIR)")
	fs.StringVar(&s.addr, "addr", envOr("GUST_ADDR", "127.0.0.1:3233"), "address the API listens on (env GUST_ADDR)")
	fs.StringVar(&s.auth, "auth", envOr("GUST_AUTH", ""), "UUID:KEY of the guest namespace; generated once and kept when empty (env GUST_AUTH)")
	fs.StringVar(&s.logLevel, "log-level", envOr("GUST_LOG_LEVEL", "info"), "debug, info, warn or error (env GUST_LOG_LEVEL)")
	sync, err := envBool("GUST_SYNC_ALWAYS", false)
	if err != nil {
		return s, err
	}
	fs.BoolVar(&s.syncAlways, "sync-always", sync, "fsync every write: survives power loss, ~10x slower writes (env GUST_SYNC_ALWAYS)")
	fs.DurationVar(&s.retention, "activation-retention", 7*24*time.Hour, "how long activation records are kept")
	fs.Int64Var(&s.maxRecords, "activation-max-records", 1_000_000, "most activation records kept")
	fs.DurationVar(&s.drain, "drain-timeout", 60*time.Second, "how long Ctrl-C waits for running activations")
	def := gust.DefaultLimits()
	perMinute, err := envInt("GUST_INVOCATIONS_PER_MINUTE", def.InvocationsPerMinute)
	if err != nil {
		return s, err
	}
	concurrent, err := envInt("GUST_CONCURRENT_INVOCATIONS", def.ConcurrentInvocations)
	if err != nil {
		return s, err
	}
	invMB, err := envInt("GUST_INVOKER_MEMORY", app.DefaultInvokerMemoryMB())
	if err != nil {
		return s, err
	}
	fs.StringVar(&s.keepAlive, "keep-alive", envOr("GUST_KEEP_ALIVE", "fixed:10m"), "how long idle functions stay warm: fixed:DURATION or hybrid (learns each action's idle times) (env GUST_KEEP_ALIVE)")
	fs.StringVar(&s.python, "python", envOr("GUST_PYTHON", process.DefaultPython), "interpreter of the python:3 kind (env GUST_PYTHON)")
	fs.StringVar(&s.node, "node", envOr("GUST_NODE", process.DefaultNode), "interpreter of the nodejs:20 kind (env GUST_NODE)")
	stem, err := envInt("GUST_STEM_CELLS", 0)
	if err != nil {
		return s, err
	}
	fs.StringVar(&s.mqttAddr, "mqtt-addr", envOr("GUST_MQTT_ADDR", ""), "host:port of an MQTT 3.1.1 listener for devices (user: namespace UUID, password: key); off when empty (env GUST_MQTT_ADDR)")
	fs.StringVar(&s.natsAddr, "nats-addr", envOr("GUST_NATS_ADDR", ""), "host:port of a NATS client port for services whose messages fire triggers (user: namespace UUID, password: key); off when empty (env GUST_NATS_ADDR)")
	if v := envOr("GUST_WASM_DIRS", ""); v != "" {
		for _, d := range strings.Split(v, ",") {
			g, err := wasm.ParseDirGrant(strings.TrimSpace(d))
			if err != nil {
				return s, usageError{fmt.Errorf("GUST_WASM_DIRS: %w", err)}
			}
			s.wasmDirs = append(s.wasmDirs, g)
		}
	}
	fromEnv := true // the first --wasm-dir replaces the env's list, as flags override env elsewhere
	fs.Func("wasm-dir", "grant a host directory to a namespace's wasm actions that ask for it (annotation gust-dirs): `NAMESPACE/NAME=/host/path[:rw]`, read-only unless :rw; repeatable (env GUST_WASM_DIRS, comma-separated)", func(v string) error {
		g, err := wasm.ParseDirGrant(v)
		if err != nil {
			return err
		}
		if fromEnv {
			s.wasmDirs, fromEnv = nil, false
		}
		s.wasmDirs = append(s.wasmDirs, g)
		return nil
	})
	for _, o := range []struct {
		p         *int
		flag, env string
		def       int
		help      string
	}{
		{&s.tmpMB, "sandbox-tmp-mb", "GUST_SANDBOX_TMP_MB", process.DefaultTmpMB, "MB of each process sandbox's private /tmp (counted in its memory limit)"},
		{&s.pids, "sandbox-pids", "GUST_SANDBOX_PIDS", process.DefaultPids, "processes and threads one process sandbox may have"},
		{&s.workers, "workers-per-function", "GUST_WORKERS_PER_FUNCTION", process.DefaultMaxWorkers, "live workers (concurrent calls) of one process action"},
	} {
		v, err := envInt(o.env, o.def)
		if err != nil {
			return s, err
		}
		fs.IntVar(o.p, o.flag, v, o.help+" (env "+o.env+")")
	}
	cpus, err := strconv.ParseFloat(envOr("GUST_SANDBOX_CPUS", "0"), 64)
	if err != nil || cpus < 0 {
		return s, usageError{fmt.Errorf("GUST_SANDBOX_CPUS: want a number of cores such as 0.5, got %q", os.Getenv("GUST_SANDBOX_CPUS"))}
	}
	fs.Float64Var(&s.cpus, "sandbox-cpus", cpus, "cores one process sandbox may use (0: a share by its memory) (env GUST_SANDBOX_CPUS)")
	noZygote, err := envBool("GUST_NO_ZYGOTE", false)
	if err != nil {
		return s, err
	}
	fs.BoolVar(&s.noZygote, "no-zygote", noZygote, "start every Python worker itself instead of forking it from its action's zygote (env GUST_NO_ZYGOTE)")
	fs.IntVar(&s.stemCells, "stem-cells", stem, "prewarmed code-less workers per interpreter (0: default of 1, negative: none) (env GUST_STEM_CELLS)")
	fs.IntVar(&s.invokerMB, "invoker-memory", invMB, "MB of memory the invoker's live instances, busy or idle, may hold, each its action's memory limit (env GUST_INVOKER_MEMORY)")
	fs.IntVar(&s.perMinute, "invocations-per-minute", perMinute, "invocations a namespace may start per minute (env GUST_INVOCATIONS_PER_MINUTE)")
	fs.IntVar(&s.concurrent, "concurrent-invocations", concurrent, "activations a namespace may have in flight (env GUST_CONCURRENT_INVOCATIONS)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gust up [flags]\n\nStarts Gust on this machine: the REST API, an invoker and an embedded NATS server.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s, errSilent
		}
		return s, usageError{err}
	}
	if fs.NArg() > 0 {
		return s, usageError{fmt.Errorf("gust up takes no arguments, got %q", fs.Args())}
	}
	if _, err := keepalive.Parse(s.keepAlive); err != nil {
		return s, usageError{fmt.Errorf("--keep-alive: %w", err)}
	}
	if s.cpus < 0 {
		return s, usageError{fmt.Errorf("--sandbox-cpus: want a number of cores such as 0.5, got %v", s.cpus)}
	}
	return s, nil
}

// usageError is a command-line mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return 2 }

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseUp(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return usageError{fmt.Errorf("bad --log-level %q: %w", s.logLevel, err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	limits := gust.DefaultLimits()
	limits.InvocationsPerMinute, limits.ConcurrentInvocations = s.perMinute, s.concurrent
	node, err := app.Start(ctx, app.Config{
		Limits:  limits,
		DataDir: s.dataDir, Addr: s.addr, Auth: s.auth, Logger: log,
		SyncAlways: s.syncAlways, ActivationMaxAge: s.retention, ActivationMaxCount: s.maxRecords,
		DrainTimeout: s.drain, Build: version, InvokerMemoryMB: s.invokerMB, KeepAlive: s.keepAlive,
		Python: s.python, Node: s.node, StemCells: s.stemCells, MQTTAddr: s.mqttAddr, NATSAddr: s.natsAddr, WasmDirs: s.wasmDirs,
		SandboxTmpMB: s.tmpMB, SandboxPids: s.pids, SandboxCPUs: s.cpus, WorkersPerFunction: s.workers, NoZygote: s.noZygote,
	})
	if err != nil {
		return err
	}
	auth := node.Guest.Auth()
	if addr := node.Broker.MQTTAddr(); addr != "" {
		log.Info("MQTT listener for devices", "addr", addr)
	}
	if addr := node.Broker.NATSAddr(); addr != "" {
		log.Info("NATS client port for services", "addr", addr)
	}
	fmt.Fprintf(stdout, `Gust is up.
  API host:   %s
  namespace:  %s
  auth:       %s
  data:       %s

Point a CLI at it:
  gust property set --apihost %s --auth %s
  wsk property set --apihost %s --auth %s

Ctrl-C stops it (running activations finish first).
`, node.URL(), app.DefaultNamespace, auth, s.dataDir, node.URL(), auth, node.URL(), auth)

	select {
	case <-ctx.Done():
	case err := <-node.Serving():
		log.Error("API server stopped", "err", err)
	}
	log.Info("shutting down: draining running activations")
	sctx, cancel := context.WithTimeout(context.Background(), s.drain+10*time.Second)
	defer cancel()
	if err := node.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
