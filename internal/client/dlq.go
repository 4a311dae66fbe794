package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// DeadLetter is a non-blocking invocation that failed every attempt.
type DeadLetter struct {
	ActivationID string          `json:"activationId"`
	Action       string          `json:"action"`
	Params       json.RawMessage `json:"params,omitempty"`
	Reason       string          `json:"reason"`
	Attempts     int             `json:"attempts"`
	Received     int64           `json:"received"`
	Failed       int64           `json:"failed"`
}

// DeadLetters lists the namespace's dead letters (a Gust extension).
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := c.call(ctx, http.MethodGet, c.collection("dlq"), nil, nil, &out)
	return out, err
}

// Redrive queues dead letter id again and returns the new activation id.
func (c *Client) Redrive(ctx context.Context, id string) (string, error) {
	var out struct {
		ActivationID string `json:"activationId"`
	}
	err := c.call(ctx, http.MethodPost, append(c.collection("dlq"), id), nil, nil, &out)
	return out.ActivationID, err
}

// DiscardDeadLetter deletes dead letter id.
func (c *Client) DiscardDeadLetter(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, append(c.collection("dlq"), id), nil, nil, nil)
}
