package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

// target is the Gust API the bench drives: a node of its own, started
// in-process on 127.0.0.1:0 in a temporary data directory, or the node
// given by --apihost.
type target struct {
	base    string         // API base URL, no trailing slash
	auth    string         // Authorization header value of the measured requests
	api     *client.Client // setup and bookkeeping: entities, records, namespaces
	node    *app.App
	dataDir string
}

// newTarget returns the target of the API at base with the credentials
// userpass ("uuid:key"). The measured requests are built by hand (see
// request); everything else goes through the project's client.
func newTarget(base, userpass string) (*target, error) {
	api, err := client.New(client.Config{APIHost: base, Auth: userpass, HTTPClient: newClient(4), UserAgent: "gust-bench"})
	if err != nil {
		return nil, err
	}
	return &target{base: base, auth: basicAuth(userpass), api: api}, nil
}

// inProcess reports whether the node runs in this process, so that the
// process's CPU time is the node's (plus the load generator's).
func (t *target) inProcess() bool { return t.node != nil }

func (t *target) describe() string {
	if t.node != nil {
		return "in-process node at " + t.base + " (temporary data directory)"
	}
	return t.base + " (external node: cpu/op is not measured for it)"
}

// startNode starts the bench's own node. wasmCache, when set, is shared
// across runs as the node's compilation cache, so that compiling the Go
// fixture costs seconds only once. tweak, when set, adjusts the node's
// configuration (an MQTT listener, more invokers).
func startNode(ctx context.Context, wasmCache string, tweak func(*app.Config)) (*target, error) {
	dir, err := os.MkdirTemp("", "gust-bench-node")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The bench measures the invoke path, not the namespace throttles:
	// OpenWhisk's defaults allow 60 invokes and 60 fires a minute.
	limits := gust.DefaultLimits()
	limits.InvocationsPerMinute, limits.ConcurrentInvocations, limits.FiresPerMinute = 1<<30, 1<<20, 1<<30
	cfg := app.Config{
		DataDir: dir, Listener: ln, Logger: slog.New(slog.DiscardHandler), Limits: limits, WasmCacheDir: wasmCache,
		DrainTimeout: 30 * time.Second, Build: "bench",
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := app.Start(ctx, cfg)
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start node: %w", err)
	}
	t, err := newTarget(a.URL(), a.Guest.Auth())
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = a.Shutdown(ctx)
		os.RemoveAll(dir)
		return nil, err
	}
	t.node, t.dataDir = a, dir
	return t, nil
}

// externalTarget checks the --apihost and --auth of a running node.
func externalTarget(apihost, auth string) (*target, error) {
	if auth == "" {
		return nil, errors.New("--apihost needs --auth UUID:KEY")
	}
	host := strings.TrimSpace(apihost)
	if !strings.Contains(host, "://") {
		host = "https://" + host // as the CLI and OpenWhisk's clients read a bare host
	}
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--apihost %q: want host[:port] or an http(s) URL", apihost)
	}
	return newTarget(strings.TrimSuffix(u.String(), "/"), auth)
}

func (t *target) close() {
	if t.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = t.node.Shutdown(ctx)
	}
	if t.dataDir != "" {
		os.RemoveAll(t.dataDir)
	}
}

func basicAuth(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

// newClient returns an HTTP client for up to conns concurrent requests on
// kept-alive connections. It ignores proxy settings: the bench only talks
// to the node it was given.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: 2 * time.Minute,
	}
}

// request is one kind of HTTP request of a load.
type request struct {
	client *http.Client
	method string
	url    string
	auth   string
	body   []byte
	want   int // expected status
}

// do sends the request and discards the body.
func (r *request) do(ctx context.Context, _ int) error {
	_, err := r.send(ctx, io.Discard)
	return err
}

// send sends the request and copies the body to dst.
func (r *request) send(ctx context.Context, dst io.Writer) (int, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, err
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(dst, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, err
	}
	if r.want != 0 && resp.StatusCode != r.want {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d, want %d", r.method, r.url, resp.StatusCode, r.want)
	}
	return resp.StatusCode, nil
}

// Bench actions are named with this prefix and deleted at the end.
const actionPrefix = "gust-bench-"

func actionPath(name string) string { return "/api/v1/namespaces/_/actions/" + name }

// action is what the bench creates: code of a kind (base64 for a binary),
// or the components of a sequence, with optional annotations.
type action struct {
	kind        string
	code        string
	binary      bool
	components  []string // of a sequence (kind "sequence"): fully qualified names
	annotations gust.KeyValues
	timeoutMS   int // a distinct timeout makes a distinct function for the invoker, so its first instance is cold
}

func wasmAction(code []byte) action {
	return action{kind: "wasm", code: base64.StdEncoding.EncodeToString(code), binary: true}
}

// put is the body that creates a: with the smallest memory limit, so that
// the invoker's memory budget admits every concurrent call of the bench.
func (a action) put() client.ActionPut {
	memory := 128
	limits := &gust.LimitsPatch{Memory: &memory}
	if a.timeoutMS > 0 {
		timeout := a.timeoutMS
		limits.Timeout = &timeout
	}
	exec := &gust.Exec{Kind: a.kind, Code: a.code, Binary: a.binary, Components: a.components}
	return client.ActionPut{Exec: exec, Limits: limits, Annotations: a.annotations}
}

// putAction creates or replaces the action name.
func (t *target) putAction(ctx context.Context, name string, a action) error {
	_, err := t.api.PutAction(ctx, name, a.put(), true)
	return err
}

func triggerPath(name string) string { return "/api/v1/namespaces/_/triggers/" + name }

// nonBlocking returns the request of a non-blocking invoke: 202 and the
// activation id, once the work queue holds the invocation.
func (t *target) nonBlocking(c *http.Client, name string) *request {
	return &request{client: c, method: http.MethodPost, url: t.base + actionPath(name), auth: t.auth, body: invokeBody, want: http.StatusAccepted}
}

// fire returns the request that fires a trigger: 202 and the trigger
// activation's id, once every active rule's action is queued.
func (t *target) fire(c *http.Client, name string) *request {
	return &request{client: c, method: http.MethodPost, url: t.base + triggerPath(name), auth: t.auth, body: invokeBody, want: http.StatusAccepted}
}

// activationID sends req and returns the activation id of its answer.
func activationID(ctx context.Context, req *request) (string, error) {
	var buf bytes.Buffer
	if _, err := req.send(ctx, &buf); err != nil {
		return "", err
	}
	var out struct {
		ActivationID string `json:"activationId"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || out.ActivationID == "" {
		return "", fmt.Errorf("no activation id in %q", buf.String())
	}
	return out.ActivationID, nil
}

// awaitRecord polls the record of activation id back to back until it is
// readable (200), so the time it returns at is late by up to one GET.
func (t *target) awaitRecord(ctx context.Context, c *http.Client, id string) error {
	get := &request{client: c, method: http.MethodGet, url: t.base + "/api/v1/namespaces/_/activations/" + id, auth: t.auth}
	start := time.Now()
	for {
		status, err := get.send(ctx, io.Discard)
		if err != nil {
			return err
		}
		if status == http.StatusOK {
			return nil
		}
		if status != http.StatusNotFound || time.Since(start) > time.Minute {
			return fmt.Errorf("activation %s: status %d after %s", id, status, time.Since(start))
		}
	}
}

// invokeBody is the small JSON POST of every invoke, and of floor-http.
var invokeBody = []byte(`{"name":"bench"}`)

// blocking returns the request of a warm blocking invoke that answers with
// the result only (as `wsk action invoke -r` does), so the response is as
// small as floor-http's.
func (t *target) blocking(c *http.Client, name string) *request {
	return &request{client: c, method: http.MethodPost, url: t.base + actionPath(name) + "?blocking=true&result=true",
		auth: t.auth, body: invokeBody, want: http.StatusOK}
}

// blockingActivation returns the request of a blocking invoke that answers
// with the whole activation, whose annotations say how the call started.
func (t *target) blockingActivation(c *http.Client, name string) *request {
	return &request{client: c, method: http.MethodPost, url: t.base + actionPath(name) + "?blocking=true",
		auth: t.auth, body: invokeBody, want: http.StatusOK}
}

// web returns the request of a web action answering JSON, with no
// credentials, as a browser would send it.
func (t *target) web(c *http.Client, ns, name string) *request {
	return &request{client: c, method: http.MethodGet, url: t.base + "/api/v1/web/" + url.PathEscape(ns) + "/default/" + name + ".json?name=bench",
		want: http.StatusOK}
}

// namespace returns the namespace of the credentials: web URLs need it.
func (t *target) namespace(ctx context.Context) (string, error) {
	names, err := t.api.ListNamespaces(ctx)
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", errors.New("the credentials have no namespace")
	}
	return names[0], nil
}
