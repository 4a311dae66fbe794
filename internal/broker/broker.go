// Package broker owns the connection to NATS: an embedded nats-server with
// JetStream for `gust up`, or an external cluster. It is the only package
// that imports nats-server.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
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
	// NATSAddr, when set ("host:port"; port 0 picks one), opens the NATS
	// client port for outside services, whose messages fire triggers; by
	// default the server is reachable only in-process.
	NATSAddr string
	// Replicas of streams and buckets (1 for a single node).
	Replicas int
	Logger   *slog.Logger
	// MQTTAddr, when set ("host:port"; port 0 picks one), opens the MQTT
	// 3.1.1 listener, for devices whose messages fire triggers.
	MQTTAddr string
	// ClientAuth, when set, makes the server authenticate every client:
	// Gust's own connections by an internal credential made at start, any
	// other (an MQTT device, a NATS client over NATSAddr) by ClientAuth,
	// which returns the subjects the client may publish and subscribe to.
	// Either listener needs it: without it anybody could come in and use
	// Gust's own subjects (the store, the work queue).
	ClientAuth func(user, password string) (allow []string, ok bool)
}

// Broker is a running NATS connection with JetStream.
type Broker struct {
	Conn     *nats.Conn
	JS       jetstream.JetStream
	Replicas int
	srv      *server.Server
	log      *slog.Logger
	auth     []nats.Option // Gust's own credential, when clients authenticate
	mqttAddr string
	natsAddr string
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
		DontListen:         cfg.NATSAddr == "",
		JetStream:          true,
		StoreDir:           filepath.Join(cfg.DataDir, "jetstream"),
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		SyncAlways:         cfg.SyncAlways,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
	}
	if (cfg.MQTTAddr != "" || cfg.NATSAddr != "") && cfg.ClientAuth == nil {
		return nil, errors.New("broker: an MQTT or NATS listener needs client authentication")
	}
	if cfg.NATSAddr != "" {
		host, port, err := listenAddr("NATS", cfg.NATSAddr)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.MQTTAddr != "" {
		host, port, err := listenAddr("MQTT", cfg.MQTTAddr)
		if err != nil {
			return nil, err
		}
		opts.MQTT = server.MQTTOpts{Host: host, Port: port}
	}
	var own []nats.Option
	if cfg.ClientAuth != nil {
		user, pass := "gust-internal", rand.Text()
		opts.CustomClientAuthentication = &clientAuth{user: user, pass: pass, check: cfg.ClientAuth}
		own = []nats.Option{nats.UserInfo(user, pass)}
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
	nc, err := nats.Connect("", append(own, nats.InProcessServer(srv), nats.Name("gust"), nats.MaxReconnects(-1))...)
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
	b := &Broker{Conn: nc, JS: js, Replicas: 1, srv: srv, log: log, auth: own}
	if cfg.MQTTAddr != "" {
		// Ready means listening: the server wrote the port it got.
		b.mqttAddr = net.JoinHostPort(opts.MQTT.Host, strconv.Itoa(opts.MQTT.Port))
	}
	if a := srv.Addr(); cfg.NATSAddr != "" && a != nil {
		b.natsAddr = a.String()
	}
	return b, nil
}

// listenAddr parses a listener's "host:port"; port 0 picks a free one.
func listenAddr(what, addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("broker: %s address %q: want host:port", what, addr)
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return host, n, nil
}

// MQTTAddr is the address of the MQTT listener ("" when there is none).
func (b *Broker) MQTTAddr() string { return b.mqttAddr }

// NATSAddr is the address of the NATS client port ("" when there is none).
func (b *Broker) NATSAddr() string { return b.natsAddr }

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
	return nats.Connect("", append(b.auth, nats.InProcessServer(b.srv), nats.Name(name))...)
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

// clientAuth authenticates clients: Gust's own connections by the
// internal credential, with every permission; others by check, limited to
// the subjects it allows.
type clientAuth struct {
	user, pass string
	check      func(user, password string) ([]string, bool)
}

func (a *clientAuth) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o.Username == a.user {
		ok := subtle.ConstantTimeCompare([]byte(o.Password), []byte(a.pass)) == 1
		if ok {
			c.RegisterUser(&server.User{Username: a.user})
		}
		return ok
	}
	allow, ok := a.check(o.Username, o.Password)
	if !ok {
		return false
	}
	perm := &server.SubjectPermission{Allow: allow}
	c.RegisterUser(&server.User{Username: o.Username, Permissions: &server.Permissions{Publish: perm, Subscribe: perm}})
	return true
}
