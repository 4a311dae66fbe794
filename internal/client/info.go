package client

import (
	"context"
	"net/http"
)

// Runtime is one kind a node knows.
type Runtime struct {
	Kind        string `json:"kind"`
	Default     bool   `json:"default"`
	Available   bool   `json:"available"`
	Interpreter string `json:"interpreter,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Info is GET /api/v1: the API's description and the node's runtimes.
type Info struct {
	Description string               `json:"description"`
	APIVersion  string               `json:"api_version"`
	Build       string               `json:"build"`
	Runtimes    map[string][]Runtime `json:"runtimes"`
}

// Info returns the API description; it needs no credentials.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	err := c.call(ctx, http.MethodGet, nil, nil, nil, &out)
	return &out, err
}
