package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// NamespaceInfo describes a namespace in the admin API.
type NamespaceInfo struct {
	Namespace string          `json:"namespace"`
	Auth      string          `json:"auth,omitempty"`
	Admin     bool            `json:"admin,omitempty"`
	Limits    json.RawMessage `json:"limits,omitempty"`
}

// AdminNamespaces lists every namespace (administrator only).
func (c *Client) AdminNamespaces(ctx context.Context) ([]NamespaceInfo, error) {
	var out []NamespaceInfo
	err := c.call(ctx, http.MethodGet, []string{"admin", "namespaces"}, nil, nil, &out)
	return out, err
}

// AdminCreateNamespace creates ns and returns its generated credential.
func (c *Client) AdminCreateNamespace(ctx context.Context, ns string) (NamespaceInfo, error) {
	var out NamespaceInfo
	err := c.call(ctx, http.MethodPut, []string{"admin", "namespaces", ns}, nil, nil, &out)
	return out, err
}

// AdminDeleteNamespace revokes ns's credential.
func (c *Client) AdminDeleteNamespace(ctx context.Context, ns string) error {
	return c.call(ctx, http.MethodDelete, []string{"admin", "namespaces", ns}, nil, nil, nil)
}

// AdminLimits returns ns's effective limits.
func (c *Client) AdminLimits(ctx context.Context, ns string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, []string{"admin", "namespaces", ns, "limits"}, nil, nil, &out)
	return out, err
}

// AdminSetLimits sets ns's throttle overrides and returns its effective limits.
func (c *Client) AdminSetLimits(ctx context.Context, ns string, overrides map[string]int) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodPut, []string{"admin", "namespaces", ns, "limits"}, nil, overrides, &out)
	return out, err
}
