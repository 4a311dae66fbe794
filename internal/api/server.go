// Package api serves Gust's OpenWhisk-compatible REST API v1 on net/http.
// Handlers return errors; one place (serveError) maps them to a status and
// OpenWhisk's {"error","code"} body.
package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/store"
)

// Invoker starts activations.
type Invoker interface {
	Invoke(ctx context.Context, req activation.Request) (activation.Outcome, error)
}

// Runtimes validates code at create time and says which kinds can run.
type Runtimes interface {
	Kinds() []string
	Runtimes() []sandbox.RuntimeInfo
	Prepare(ctx context.Context, a *gust.Action, digest string, code []byte) error
}

// Config wires a Server.
type Config struct {
	Entities    *store.Entities
	Keys        *store.Keys
	Activations *store.Activations
	Invoker     Invoker
	DeadLetters DeadLetters
	Runtimes    Runtimes
	Metrics     *metrics.Registry // served at /metrics; optional
	Routes      *store.Routes     // managed APIs (wsk api); nil: none
	Triggers    Firer             // fires triggers (trigger.Firer); nil: fires answer 503
	Limits      gust.SystemLimits
	Logger      *slog.Logger
	Build       string // version shown by GET /api/v1
}

// Server is the REST API.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	now func() time.Time
}

// New returns the API handler.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), now: time.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routes()
	return s
}

// handler is an API handler that returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request) error

// authed is a handler for an authenticated caller.
type authed func(w http.ResponseWriter, r *http.Request, id *store.Identity) error

func (s *Server) routes() {
	s.mux.Handle("GET /{$}", s.public(s.info))
	s.mux.Handle("GET /ping", s.public(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("pong"))
		return err
	}))
	s.mux.Handle("GET /api/v1", s.public(s.apiInfo))
	s.mux.Handle("GET /api/v1/{$}", s.public(s.apiInfo))
	s.mux.Handle("/api/v1/namespaces", s.auth(methods{"GET": s.listNamespaces}))
	s.mux.Handle("/api/v1/namespaces/{$}", s.auth(methods{"GET": s.listNamespaces}))
	s.mux.Handle("/api/v1/namespaces/{ns}/limits", s.auth(methods{"GET": s.getLimits}))
	s.mux.Handle("/api/v1/namespaces/{ns}/actions", s.auth(methods{"GET": s.listActions}))
	s.mux.Handle("/api/v1/namespaces/{ns}/actions/{rest...}", s.auth(methods{
		"GET": s.getAction, "PUT": s.putAction, "POST": s.invokeAction, "DELETE": s.deleteAction,
	}))
	s.entityRoutes() // packages, triggers, rules (packages.go)
	s.mux.Handle("/api/v1/namespaces/{ns}/activations", s.auth(methods{"GET": s.listActivations}))
	s.mux.Handle("/api/v1/namespaces/{ns}/activations/{rest...}", s.auth(methods{"GET": s.getActivation}))
	s.mux.Handle("/metrics", s.auth(methods{"GET": s.serveMetrics}))
	s.mux.Handle("/api/v1/admin/namespaces", s.auth(methods{"GET": s.adminListNamespaces}))
	s.mux.Handle("/api/v1/admin/namespaces/{ns}", s.auth(methods{"PUT": s.adminCreateNamespace, "DELETE": s.adminDeleteNamespace}))
	s.mux.Handle("/api/v1/admin/namespaces/{ns}/limits", s.auth(methods{"GET": s.adminGetLimits, "PUT": s.adminSetLimits}))
	s.mux.Handle("/api/v1/namespaces/{ns}/dlq", s.auth(methods{"GET": s.listDeadLetters}))
	s.mux.Handle("/api/v1/namespaces/{ns}/dlq/{id}", s.auth(methods{"POST": s.redrive, "DELETE": s.discardDeadLetter}))
	// Web actions and managed API routes are the only routes without
	// authentication besides the info and ping ones (web_routes_test.go).
	s.mux.Handle(webPrefix, s.public(s.serveWeb))
	s.mux.Handle(webPrefix+"whisk.system/apimgmt/{op}", s.auth(methods{"GET": s.apimgmt, "POST": s.apimgmt, "DELETE": s.apimgmt}))
	s.mux.Handle("/api/{ns}/{rest...}", s.public(s.serveRoute))
	// Without this, /api/x would get net/http's redirect to /api/x/.
	s.mux.Handle("/api/{ns}", s.public(func(w http.ResponseWriter, r *http.Request) error { return gust.ErrNotFound }))
	s.mux.Handle("/", s.public(func(w http.ResponseWriter, r *http.Request) error {
		return gust.ErrNotFound
	}))
}

// ServeHTTP adds the request id and CORS headers, answers OPTIONS, and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	rid := r.Header.Get("X-Request-ID")
	if rid == "" || strings.HasPrefix(rid, "sid_") || len(rid) > 128 {
		rid = newRequestID()
	}
	h.Set("X-Request-ID", rid)
	r = r.WithContext(context.WithValue(r.Context(), ridKey{}, rid))
	// Web actions set their own CORS headers and may answer OPTIONS themselves (§6).
	if strings.HasPrefix(r.URL.Path, "/api/v1") && !strings.HasPrefix(r.URL.Path, webPrefix) {
		// Shared value slices: Set would allocate one per header per request.
		h["Access-Control-Allow-Origin"] = corsOrigin
		h["Access-Control-Allow-Methods"] = corsMethods
		h["Access-Control-Allow-Headers"] = corsHeaders
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

type ridKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ridKey{}).(string)
	return id
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// methods dispatches on the HTTP method, answering 405 in OpenWhisk's
// JSON shape rather than net/http's plain text.
type methods map[string]authed

func (s *Server) public(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.serveError(w, r, err)
		}
	})
}

func (s *Server) auth(m methods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.authenticate(r)
		if err == nil {
			h, ok := m[r.Method]
			if !ok {
				err = gust.Errorf(gust.KindMethod, gust.MsgMethod)
			} else {
				err = h(w, r, id)
			}
		}
		if err != nil {
			s.serveError(w, r, err)
		}
	})
}

// authenticate checks HTTP Basic credentials "uuid:key".
func (s *Server) authenticate(r *http.Request) (*store.Identity, error) {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return nil, gust.Errorf(gust.KindUnauthorized, gust.MsgNoAuth)
	}
	scheme, payload, _ := strings.Cut(hdr, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return nil, gust.Errorf(gust.KindUnauthorized, gust.MsgUnauthorized)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return nil, gust.Errorf(gust.KindUnauthorized, gust.MsgUnauthorized)
	}
	uuid, key, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, gust.Errorf(gust.KindUnauthorized, gust.MsgUnauthorized)
	}
	id, ok := s.cfg.Keys.Authenticate(uuid, key)
	if !ok {
		return nil, gust.Errorf(gust.KindUnauthorized, gust.MsgUnauthorized)
	}
	return id, nil
}

var statusOf = map[gust.Kind]int{
	gust.KindInternal:     http.StatusInternalServerError,
	gust.KindInvalid:      http.StatusBadRequest,
	gust.KindUnauthorized: http.StatusUnauthorized,
	gust.KindForbidden:    http.StatusForbidden,
	gust.KindNotFound:     http.StatusNotFound,
	gust.KindConflict:     http.StatusConflict,
	gust.KindTooLarge:     http.StatusRequestEntityTooLarge,
	gust.KindThrottled:    http.StatusTooManyRequests,
	gust.KindUnavailable:  http.StatusServiceUnavailable,
	gust.KindMethod:       http.StatusMethodNotAllowed,
	gust.KindTimeout:      http.StatusAccepted,
}

// serveError writes err as OpenWhisk's error body; internal details are
// logged with the request id, never sent.
func (s *Server) serveError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = gust.Errorf(gust.KindTooLarge, "Request larger than allowed: more than %d bytes.", mbe.Limit)
	}
	kind := gust.KindOf(err)
	status := statusOf[kind]
	msg := gust.MessageOf(err)
	rid := requestID(r.Context())
	if kind == gust.KindInternal || kind == gust.KindUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", rid, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="OpenWhisk secure realm"`)
	}
	writeJSON(w, status, map[string]string{"error": msg, "code": rid})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeRaw(w, status, b)
}

// Constant header values, shared by every response (net/http only reads
// them).
var (
	corsOrigin  = []string{"*"}
	corsMethods = []string{"GET, DELETE, POST, PUT, HEAD"}
	corsHeaders = []string{"Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"}
	contentJSON = []string{"application/json"}
)

func writeRaw(w http.ResponseWriter, status int, b []byte) error {
	w.Header()["Content-Type"] = contentJSON
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}
