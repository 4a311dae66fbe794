package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// ActivationListOptions filter and page an activation list.
type ActivationListOptions struct {
	Name  string    // "action" or "pkg/action"; empty for all
	Since time.Time // inclusive lower bound on start; zero for none
	Upto  time.Time // inclusive upper bound on start; zero for none
	Limit int       // 0 asks for the server's maximum (200), as in OpenWhisk
	Skip  int
	Docs  bool // full records instead of summaries
}

func (o ActivationListOptions) query() url.Values {
	q := ListOptions{Limit: o.Limit, Skip: o.Skip}.query()
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if !o.Since.IsZero() {
		q.Set("since", strconv.FormatInt(o.Since.UnixMilli(), 10))
	}
	if !o.Upto.IsZero() {
		q.Set("upto", strconv.FormatInt(o.Upto.UnixMilli(), 10))
	}
	if o.Docs {
		q.Set("docs", "true")
	}
	return q
}

// ListedActivation is one entry of an activation list: the full record when
// Docs was asked, else a summary, which has no response but carries the
// status code at the top level.
type ListedActivation struct {
	gust.Activation
	StatusCode *gust.Status `json:"statusCode,omitempty"`
}

// Status returns the activation's status, whichever form it came in.
func (a *ListedActivation) Status() gust.Status {
	if a.StatusCode != nil {
		return *a.StatusCode
	}
	return a.Response.StatusCode
}

// ListActivations returns activations of the namespace, newest first.
func (c *Client) ListActivations(ctx context.Context, opts ActivationListOptions) ([]ListedActivation, error) {
	var out []ListedActivation
	err := c.call(ctx, http.MethodGet, c.collection("activations"), opts.query(), nil, &out)
	return out, err
}

// CountActivations returns how many records of the namespace are stored,
// of the action name ("action" or "pkg/action") only unless it is empty.
// The server counts after the records queued before the call are written.
func (c *Client) CountActivations(ctx context.Context, name string) (int, error) {
	q := url.Values{"count": {"true"}}
	if name != "" {
		q.Set("name", name)
	}
	var out struct {
		Activations *int `json:"activations"`
	}
	if err := c.call(ctx, http.MethodGet, c.collection("activations"), q, nil, &out); err != nil {
		return 0, err
	}
	if out.Activations == nil {
		return 0, errors.New("client: count response has no \"activations\" field")
	}
	return *out.Activations, nil
}

// activation returns the path segments of activation id, plus sub.
func (c *Client) activation(id string, sub ...string) ([]string, error) {
	if id == "" {
		return nil, errors.New("client: no activation id")
	}
	return append(c.collection("activations"), append([]string{id}, sub...)...), nil
}

// GetActivation returns the full record of activation id.
func (c *Client) GetActivation(ctx context.Context, id string) (*gust.Activation, error) {
	segs, err := c.activation(id)
	if err != nil {
		return nil, err
	}
	var out gust.Activation
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ActivationLogs returns the log lines of activation id.
func (c *Client) ActivationLogs(ctx context.Context, id string) ([]string, error) {
	segs, err := c.activation(id, "logs")
	if err != nil {
		return nil, err
	}
	var out struct {
		Logs []string `json:"logs"`
	}
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Logs, nil
}

// ActivationResult returns the response of activation id: status and result.
func (c *Client) ActivationResult(ctx context.Context, id string) (*gust.Response, error) {
	segs, err := c.activation(id, "result")
	if err != nil {
		return nil, err
	}
	var out gust.Response
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
