// Package client is a small Go client for the OpenWhisk REST API v1 as Gust
// serves it. The gust CLI is built on it, and tests use it to drive a server.
//
// Methods take a context first and return Gust's domain types
// (internal/gust). Failures reported by the platform come back as *Error.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
)

// DefaultNamespace stands for the namespace of the caller's credentials.
const DefaultNamespace = "_"

// Config says where the API is and who calls it.
type Config struct {
	// APIHost is "host[:port]" (https is assumed, as OpenWhisk's client does)
	// or a URL with an http:// or https:// scheme, optionally with a path prefix.
	APIHost string
	// Auth is the "uuid:key" credential sent as HTTP Basic auth; empty sends none.
	Auth string
	// Namespace for relative names; DefaultNamespace when empty.
	Namespace string
	// HTTPClient sends the requests; http.DefaultClient when nil. Deadlines
	// come from the context of each call, since blocking invokes may wait
	// for a minute.
	HTTPClient *http.Client
	// UserAgent is sent with every request; "gust-client" when empty.
	UserAgent string
}

// Client calls one Gust (or OpenWhisk) API host. It is safe for concurrent use.
type Client struct {
	base *url.URL
	auth string
	ns   string
	hc   *http.Client
	ua   string
	body *json.RawMessage // see WithBody
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	host := strings.TrimSpace(cfg.APIHost)
	if host == "" {
		return nil, errors.New("client: no API host")
	}
	// OpenWhisk's client prepends https:// to a bare host. It tests for an
	// "http" prefix, which misreads hosts such as "httpbin.example"; looking
	// for a scheme separator does not.
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("client: API host %q: %w", cfg.APIHost, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: API host %q: want host[:port] or an http(s) URL", cfg.APIHost)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	c := &Client{base: u, auth: cfg.Auth, ns: cfg.Namespace, hc: cfg.HTTPClient, ua: cfg.UserAgent}
	if c.ns == "" {
		c.ns = DefaultNamespace
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.ua == "" {
		c.ua = "gust-client"
	}
	return c, nil
}

// WithBody returns a copy of c that also stores in *dst the body of each
// successful response, so that a caller can show exactly what the server
// sent (the CLI's --json) while using the typed result. The copy shares dst
// and is meant for one call at a time. (Invoke returns its body anyway.)
func (c *Client) WithBody(dst *json.RawMessage) *Client {
	cp := *c
	cp.body = dst
	return &cp
}

// Error is a failure reported by the API: its HTTP status and the
// {"error", "code"} body OpenWhisk defines, where code is the request's
// transaction id.
type Error struct {
	Status  int
	Message string
	Code    string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (code %s)", e.Message, e.Code)
	}
	return fmt.Sprintf("%s (HTTP status %d)", e.Message, e.Status)
}

// decodeError builds the *Error for a non-2xx answer. OpenWhisk's clients
// only trust a body carrying both "error" and "code"; anything else (a
// proxy's HTML page, an empty body) keeps the status and a short message.
func decodeError(status int, body []byte) *Error {
	var v struct {
		Error json.RawMessage `json:"error"`
		Code  json.RawMessage `json:"code"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Error) > 0 {
		return &Error{Status: status, Message: jsonText(v.Error), Code: jsonText(v.Code)}
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" || !json.Valid(body) && strings.HasPrefix(msg, "<") {
		msg = http.StatusText(status)
		if msg == "" {
			msg = "unexpected response"
		}
	}
	const limit = 200 // an error line, not a page
	if len(msg) > limit {
		msg = strings.ToValidUTF8(msg[:limit], "") + "…"
	}
	return &Error{Status: status, Message: msg}
}

// jsonText returns a JSON string's text, or other JSON as written.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// hasPlatformError reports whether body is an API error document.
func hasPlatformError(body []byte) bool {
	var v struct {
		Error *json.RawMessage `json:"error"`
		Code  *json.RawMessage `json:"code"`
	}
	return json.Unmarshal(body, &v) == nil && v.Error != nil && v.Code != nil
}

// url returns the URL of /api/v1/segs... with each segment escaped on its
// own: entity names may contain spaces, '@' or '&', and a name must never be
// read as more than one segment.
func (c *Client) url(segs []string, q url.Values) *url.URL {
	u := *c.base
	var p, raw strings.Builder
	p.WriteString(u.Path)
	raw.WriteString(u.EscapedPath())
	for _, s := range append([]string{"api", "v1"}, segs...) {
		p.WriteString("/" + s)
		raw.WriteString("/" + url.PathEscape(s))
	}
	u.Path, u.RawPath = p.String(), raw.String()
	u.RawQuery = q.Encode()
	return &u
}

// send makes one request and returns the response with its whole body,
// whatever the status.
func (c *Client) send(ctx context.Context, method string, segs []string, q url.Values, in any) (*http.Response, []byte, error) {
	var body io.Reader
	if in != nil {
		b, ok := in.(json.RawMessage)
		if !ok {
			var err error
			if b, err = json.Marshal(in); err != nil {
				return nil, nil, fmt.Errorf("client: encode request: %w", err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(segs, q).String(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.auth != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.auth)))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err // a *url.Error already names the method and URL
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("client: read response of %s %s: %w", method, req.URL.Redacted(), err)
	}
	return resp, data, nil
}

// call makes a request that must succeed and decodes the answer into out
// (unless out is nil).
func (c *Client) call(ctx context.Context, method string, segs []string, q url.Values, in, out any) error {
	resp, data, err := c.send(ctx, method, segs, q, in)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, data)
	}
	return c.decode(data, out)
}

func (c *Client) decode(data []byte, out any) error {
	if c.body != nil {
		*c.body = append((*c.body)[:0], data...)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: decode response: %w", err)
	}
	return nil
}

// entity returns the path segments of an entity of collection from a name
// that is relative ("name", "pkg/name") or fully qualified ("/ns/name",
// "/ns/pkg/name").
func (c *Client) entity(collection, name string) ([]string, error) {
	p, err := gust.ParsePath(name, c.ns)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	segs := []string{"namespaces", p.Namespace, collection}
	if p.Package != "" {
		segs = append(segs, p.Package)
	}
	return append(segs, p.Name), nil
}

// collection returns the path segments of a collection of the client's namespace.
func (c *Client) collection(name string) []string {
	return []string{"namespaces", c.ns, name}
}

// ListNamespaces returns the namespaces of the caller's credentials.
func (c *Client) ListNamespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := c.call(ctx, http.MethodGet, []string{"namespaces"}, nil, nil, &out)
	return out, err
}

// GetLimits returns the effective limits of the client's namespace as the
// JSON document the server sends; its fields vary with the deployment.
func (c *Client) GetLimits(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, []string{"namespaces", c.ns, "limits"}, nil, nil, &out)
	return out, err
}
