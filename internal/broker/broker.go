// Package broker owns the connection to NATS: an embedded nats-server with
// JetStream for `gust up`, or an external cluster. It is the only package
// that imports nats-server.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config selects and sizes the NATS server.
type Config struct {
	// DataDir holds the JetStream store (DataDir/jetstream).
	DataDir string
	// ServerName names the embedded server; explicit because MQTT and
	// clustering need a stable name.
	ServerName string
	// MaxMemory and MaxStore bound JetStream's memory and file storage in bytes.
	// Without them the server sizes itself from the host (75% of RAM and disk).
	MaxMemory int64
	MaxStore  int64
	// SyncAlways fsyncs every acknowledged write (safer against power loss,
	// ~10-40x slower); by default writes are synced every SyncInterval.
	SyncAlways bool
	// Listen opens a TCP client port (127.0.0.1:Port; -1 random) for external
	// NATS clients; by default the server is reachable only in-process.
	Listen bool
	Port   int
	// Replicas of streams and buckets (1 for a single node).
	Replicas int
	Logger   *slog.Logger
}

// Broker is a running NATS connection with JetStream.
type Broker struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Replicas int
	srv      *server.Server
	log      *slog.Logger
}

// Start starts an embedded server and connects to it in-process.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: DataDir is required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "gust"
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = 256 << 20
	}
	if cfg.MaxStore == 0 {
		cfg.MaxStore = 10 << 30
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               "127.0.0.1",
		DontListen:         !cfg.Listen,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           filepath.Join(cfg.DataDir, "jetstream"),
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		SyncAlways:         cfg.SyncAlways,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
	}
	if cfg.Listen && cfg.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: new server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("broker: embedded NATS server did not become ready within 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("gust"), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("broker: connect in-process: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("broker: jetstream not ready: %w", err)
	}
	return &Broker{Conn: nc, JS: js, Replicas: 1, srv: srv, log: log}, nil
}

// ClientURL is the TCP URL of the embedded server ("" when it does not listen).
func (b *Broker) ClientURL() string {
	if b.srv == nil || b.srv.Addr() == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// Connect returns a new in-process connection, e.g. for a component that
// must not share flow control with the others.
func (b *Broker) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(b.srv), nats.Name(name))
}

// Close drains the connection and shuts the server down.
func (b *Broker) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		// Drain is asynchronous; wait for it so pending acks are not lost.
		for i := 0; i < 200 && !b.Conn.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		b.Conn.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// natsLogger bridges nats-server's logger onto slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
