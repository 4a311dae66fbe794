package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gust-faas/gust/internal/gust"
)

// EntityPut is the body of PUT for a trigger or package: every field is
// optional on update (absent fields keep their value).
type EntityPut struct {
	Parameters  gust.KeyValues `json:"parameters,omitempty"`
	Annotations gust.KeyValues `json:"annotations,omitempty"`
	Version     string         `json:"version,omitempty"`
	Publish     *bool          `json:"publish,omitempty"`
	Binding     *gust.Binding  `json:"binding,omitempty"` // packages: makes a binding
}

// PutTrigger creates the trigger name, or updates it when overwrite is set.
func (c *Client) PutTrigger(ctx context.Context, name string, body EntityPut, overwrite bool) (*gust.Trigger, error) {
	segs, err := c.entity("triggers", name)
	if err != nil {
		return nil, err
	}
	var out gust.Trigger
	q := url.Values{"overwrite": {strconv.FormatBool(overwrite)}}
	if err := c.call(ctx, http.MethodPut, segs, q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTrigger returns the trigger name, with its rules.
func (c *Client) GetTrigger(ctx context.Context, name string) (*gust.Trigger, error) {
	segs, err := c.entity("triggers", name)
	if err != nil {
		return nil, err
	}
	var out gust.Trigger
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTriggers returns the namespace's triggers, newest first.
func (c *Client) ListTriggers(ctx context.Context, opts ListOptions) ([]gust.Trigger, error) {
	var out []gust.Trigger
	err := c.call(ctx, http.MethodGet, c.collection("triggers"), opts.query(), nil, &out)
	return out, err
}

// DeleteTrigger deletes the trigger name.
func (c *Client) DeleteTrigger(ctx context.Context, name string) error {
	segs, err := c.entity("triggers", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, segs, nil, nil, nil)
}

// FireTrigger fires the trigger name with params (a JSON object; nil sends
// {}). It returns the trigger activation's id, or "" when no rule was
// active and nothing ran.
func (c *Client) FireTrigger(ctx context.Context, name string, params json.RawMessage) (string, error) {
	segs, err := c.entity("triggers", name)
	if err != nil {
		return "", err
	}
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	var out struct {
		ActivationID string `json:"activationId"`
	}
	resp, data, err := c.send(ctx, http.MethodPost, segs, nil, params)
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return "", c.decode(nil, nil)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", decodeError(resp.StatusCode, data)
	}
	if err := c.decode(data, &out); err != nil {
		return "", err
	}
	return out.ActivationID, nil
}
