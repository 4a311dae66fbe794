package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// ActionPut is the body of PUT …/actions/{name}. Every field is optional on
// update (absent fields keep their value on the server); Exec is required
// on create.
type ActionPut struct {
	Exec           *gust.Exec        `json:"exec,omitempty"`
	Parameters     gust.KeyValues    `json:"parameters,omitempty"`
	Annotations    gust.KeyValues    `json:"annotations,omitempty"`
	Limits         *gust.LimitsPatch `json:"limits,omitempty"`
	Version        string            `json:"version,omitempty"`
	Publish        *bool             `json:"publish,omitempty"`
	DelAnnotations []string          `json:"delAnnotations,omitempty"`
}

// ListOptions page through a collection. As in OpenWhisk, Limit 0 asks for
// the server's maximum (200); both are always sent, as the wsk CLI does.
type ListOptions struct {
	Limit int
	Skip  int
}

func (o ListOptions) query() url.Values {
	return url.Values{"limit": {strconv.Itoa(o.Limit)}, "skip": {strconv.Itoa(o.Skip)}}
}

// PutAction creates the action name ("name", "pkg/name", "/ns/[pkg/]name"),
// or updates it when overwrite is set, and returns the stored action.
func (c *Client) PutAction(ctx context.Context, name string, body ActionPut, overwrite bool) (*gust.Action, error) {
	segs, err := c.entity("actions", name)
	if err != nil {
		return nil, err
	}
	q := url.Values{"overwrite": {strconv.FormatBool(overwrite)}}
	var out gust.Action
	if err := c.call(ctx, http.MethodPut, segs, q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetAction returns the action name; without code the server leaves out exec.code.
func (c *Client) GetAction(ctx context.Context, name string, code bool) (*gust.Action, error) {
	segs, err := c.entity("actions", name)
	if err != nil {
		return nil, err
	}
	var out gust.Action
	if err := c.call(ctx, http.MethodGet, segs, url.Values{"code": {strconv.FormatBool(code)}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListActions returns the actions of the namespace, newest first, as
// summaries: no code and no parameters.
func (c *Client) ListActions(ctx context.Context, opts ListOptions) ([]gust.Action, error) {
	var out []gust.Action
	err := c.call(ctx, http.MethodGet, c.collection("actions"), opts.query(), nil, &out)
	return out, err
}

// CountActions returns the number of actions in the namespace.
func (c *Client) CountActions(ctx context.Context) (int, error) {
	var out struct {
		Actions *int `json:"actions"`
	}
	if err := c.call(ctx, http.MethodGet, c.collection("actions"), url.Values{"count": {"true"}}, nil, &out); err != nil {
		return 0, err
	}
	if out.Actions == nil {
		return 0, fmt.Errorf("client: count response has no \"actions\" field")
	}
	return *out.Actions, nil
}

// DeleteAction deletes the action name.
func (c *Client) DeleteAction(ctx context.Context, name string) error {
	segs, err := c.entity("actions", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, segs, nil, nil, nil)
}

// InvokeOpts say how to wait for an invocation.
type InvokeOpts struct {
	Blocking bool          // wait for the activation to end
	Result   bool          // with Blocking: answer only the result, not the activation
	Timeout  time.Duration // with Blocking: how long the server waits (ms precision); 0 is the server's default
}

// Invoke runs the action name with params (a JSON object; nil sends {}).
// It returns the HTTP status, the body and the activation id:
//   - 202 with {"activationId"} for a non-blocking call, or a blocking one
//     that outlived its wait;
//   - 200 with the activation (or just its result with Result) on success;
//   - 502 or 500 with the same body when the action failed: that is an
//     outcome of the action, not an error of the call, so err is nil.
//
// err is an *Error when the platform refused or failed the call itself.
func (c *Client) Invoke(ctx context.Context, name string, params json.RawMessage, opts InvokeOpts) (status int, body json.RawMessage, activationID string, err error) {
	segs, err := c.entity("actions", name)
	if err != nil {
		return 0, nil, "", err
	}
	q := url.Values{
		"blocking": {strconv.FormatBool(opts.Blocking)},
		"result":   {strconv.FormatBool(opts.Result)},
	}
	if opts.Blocking && opts.Timeout > 0 {
		q.Set("timeout", strconv.FormatInt(max(1, opts.Timeout.Milliseconds()), 10))
	}
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	resp, data, err := c.send(ctx, http.MethodPost, segs, q, params)
	if err != nil {
		return 0, nil, "", err
	}
	id := resp.Header.Get("X-Openwhisk-Activation-Id")
	if id == "" {
		id = activationIDOf(data)
	}
	if !actionOutcome(resp, data, opts.Blocking) {
		return resp.StatusCode, data, id, decodeError(resp.StatusCode, data)
	}
	return resp.StatusCode, data, id, nil
}

// actionOutcome reports whether an invoke answer carries the outcome of the
// action rather than a refusal by the platform. A failed blocking run
// answers 502 (application or developer error) or 500 (internal error) with
// the activation or its result. OpenWhisk's clients tell the two apart by
// the "code" field of platform errors; the activation id header, set only
// when an activation exists, settles a result that happens to have both
// "error" and "code".
func actionOutcome(resp *http.Response, body []byte, blocking bool) bool {
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return true
	case !blocking || resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusInternalServerError:
		return false
	case !json.Valid(body):
		return false
	case resp.Header.Get("X-Openwhisk-Activation-Id") != "":
		return true
	default:
		return !hasPlatformError(body)
	}
}

// activationIDOf reads "activationId" from a 202 body or an activation.
func activationIDOf(body []byte) string {
	var v struct {
		ID string `json:"activationId"`
	}
	_ = json.Unmarshal(body, &v) // a result need not be an object
	return v.ID
}
