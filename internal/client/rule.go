package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gust-faas/gust/internal/gust"
)

// RulePut is the body of PUT …/rules/{name}.
type RulePut struct {
	Trigger     string         `json:"trigger,omitempty"` // "/ns/name", "name"
	Action      string         `json:"action,omitempty"`  // "/ns/[pkg/]name", "[pkg/]name"
	Annotations gust.KeyValues `json:"annotations,omitempty"`
	Version     string         `json:"version,omitempty"`
	Publish     *bool          `json:"publish,omitempty"`
}

// PutRule creates the rule name (active), or updates it when overwrite is set.
func (c *Client) PutRule(ctx context.Context, name string, body RulePut, overwrite bool) (*gust.Rule, error) {
	segs, err := c.entity("rules", name)
	if err != nil {
		return nil, err
	}
	var out gust.Rule
	q := url.Values{"overwrite": {strconv.FormatBool(overwrite)}}
	if err := c.call(ctx, http.MethodPut, segs, q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetRule returns the rule name with its status.
func (c *Client) GetRule(ctx context.Context, name string) (*gust.Rule, error) {
	segs, err := c.entity("rules", name)
	if err != nil {
		return nil, err
	}
	var out gust.Rule
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRules returns the namespace's rules, newest first, without status
// (as OpenWhisk lists them).
func (c *Client) ListRules(ctx context.Context, opts ListOptions) ([]gust.Rule, error) {
	var out []gust.Rule
	err := c.call(ctx, http.MethodGet, c.collection("rules"), opts.query(), nil, &out)
	return out, err
}

// DeleteRule deletes the rule name.
func (c *Client) DeleteRule(ctx context.Context, name string) error {
	segs, err := c.entity("rules", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, segs, nil, nil, nil)
}

// SetRuleState enables (gust.RuleActive) or disables (gust.RuleInactive)
// the rule name.
func (c *Client) SetRuleState(ctx context.Context, name, status string) error {
	segs, err := c.entity("rules", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, segs, nil, map[string]string{"status": status}, nil)
}
