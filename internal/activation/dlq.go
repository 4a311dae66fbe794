package activation

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Retry defaults for non-blocking invocations, overridable per action with
// the annotations maxRetries and maxEventAge (seconds), as AWS Lambda's
// asynchronous invocation settings.
const (
	DefaultMaxRetries  = 2
	MaxMaxRetries      = 10
	DefaultMaxEventAge = 6 * time.Hour
	MinMaxEventAge     = time.Minute
	MaxMaxEventAge     = 6 * time.Hour
	// crashAllowance is how many deliveries beyond the retries a message may
	// take when workers die before finishing it (no attempt was recorded).
	crashAllowance = 3
	dlqStream      = "DLQ"
)

// retryPolicy returns an action's retry settings from its annotations.
func retryPolicy(a *gust.Action) (retries int, maxAge time.Duration) {
	retries, maxAge = DefaultMaxRetries, DefaultMaxEventAge
	if raw, ok := a.Annotations.Get("maxRetries"); ok {
		if n, err := strconv.Atoi(string(raw)); err == nil && n >= 0 && n <= MaxMaxRetries {
			retries = n
		}
	}
	if raw, ok := a.Annotations.Get("maxEventAge"); ok {
		if n, err := strconv.Atoi(string(raw)); err == nil {
			if d := time.Duration(n) * time.Second; d >= MinMaxEventAge && d <= MaxMaxEventAge {
				maxAge = d
			}
		}
	}
	return retries, maxAge
}

// ValidateRetryAnnotations checks maxRetries and maxEventAge at create time.
func ValidateRetryAnnotations(kv gust.KeyValues) error {
	if raw, ok := kv.Get("maxRetries"); ok {
		if n, err := strconv.Atoi(string(raw)); err != nil || n < 0 || n > MaxMaxRetries {
			return gust.Errorf(gust.KindInvalid, "The annotation maxRetries must be an integer from 0 to %d.", MaxMaxRetries)
		}
	}
	if raw, ok := kv.Get("maxEventAge"); ok {
		n, err := strconv.Atoi(string(raw))
		if d := time.Duration(n) * time.Second; err != nil || d < MinMaxEventAge || d > MaxMaxEventAge {
			return gust.Errorf(gust.KindInvalid, "The annotation maxEventAge must be a number of seconds from %d to %d.", int(MinMaxEventAge.Seconds()), int(MaxMaxEventAge.Seconds()))
		}
	}
	return nil
}

// retryable reports whether a failed attempt is worth another: crashes,
// timeouts and platform failures may pass; an application error is the
// function's own answer and would only repeat.
func retryable(s gust.Status) bool {
	return s == gust.StatusDeveloperError || s == gust.StatusInternalError
}

// backoff is the delay before attempt n+1: 1s, 2s, 4s … capped at 1 minute.
func backoff(n int) time.Duration {
	d := time.Second << min(n, 6)
	return min(d, time.Minute)
}

// DeadLetter is an invocation that ran out of attempts.
type DeadLetter struct {
	ActivationID string          `json:"activationId"`
	Action       string          `json:"action"`
	Params       json.RawMessage `json:"params,omitempty"`
	Reason       string          `json:"reason"`
	Attempts     int             `json:"attempts"`
	Received     int64           `json:"received"`
	Failed       int64           `json:"failed"`
}

// openDLQ creates the dead-letter stream. JetStream only raises an
// advisory when a message exceeds its deliveries; Gust fills this stream itself.
func openDLQ(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        dlqStream,
		Description: "Gust invocations that failed every attempt",
		Subjects:    []string{"dlq.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      14 * 24 * time.Hour,
		AllowDirect: true,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	return st, nil
}

func dlqSubject(ns, id string) string { return "dlq." + store.Token(ns) + "." + id }

// deadLetter stores q in the dead-letter stream.
func (q *Queue) deadLetter(ctx context.Context, m queued, reason string, attempts int) error {
	dl := DeadLetter{ActivationID: m.ActivationID, Action: m.Path, Params: m.Params, Reason: reason,
		Attempts: attempts, Received: m.Received, Failed: time.Now().UnixMilli()}
	data, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	_, err = q.js.PublishMsg(ctx, &nats.Msg{Subject: dlqSubject(m.Namespace, m.ActivationID), Data: data},
		jetstream.WithMsgID("dlq-"+m.ActivationID))
	return err
}

// DeadLetters lists ns's dead letters, oldest first.
func (q *Queue) DeadLetters(ctx context.Context, ns string) ([]DeadLetter, error) {
	filter := "dlq." + store.Token(ns) + ".*"
	var out []DeadLetter
	for seq := uint64(1); len(out) < 10_000; {
		msg, err := q.dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if err != nil {
			if err == jetstream.ErrMsgNotFound {
				break
			}
			return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, err)
		}
		var dl DeadLetter
		if json.Unmarshal(msg.Data, &dl) == nil {
			out = append(out, dl)
		}
		seq = msg.Sequence + 1
	}
	return out, nil
}

// takeDeadLetter removes and returns ns's dead letter id.
func (q *Queue) takeDeadLetter(ctx context.Context, ns, id string) (DeadLetter, error) {
	var dl DeadLetter
	msg, err := q.dlq.GetLastMsgForSubject(ctx, dlqSubject(ns, id))
	if err != nil {
		if err == jetstream.ErrMsgNotFound {
			return dl, gust.ErrNotFound
		}
		return dl, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, err)
	}
	if err := json.Unmarshal(msg.Data, &dl); err != nil {
		return dl, err
	}
	if err := q.dlq.DeleteMsg(ctx, msg.Sequence); err != nil {
		return dl, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, err)
	}
	return dl, nil
}

// DiscardDeadLetter deletes ns's dead letter id.
func (s *Service) DiscardDeadLetter(ctx context.Context, ns, id string) error {
	_, err := s.queue.takeDeadLetter(ctx, ns, id)
	return err
}

// DeadLetters lists ns's dead letters.
func (s *Service) DeadLetters(ctx context.Context, ns string) ([]DeadLetter, error) {
	return s.queue.DeadLetters(ctx, ns)
}

// Redrive queues a dead letter again as a new invocation (a new activation
// id, so the failed record stays) and removes it from the dead letters.
func (s *Service) Redrive(ctx context.Context, caller string, id string) (string, error) {
	if err := gust.ValidateActivationID(id); err != nil {
		return "", err
	}
	dl, err := s.queue.takeDeadLetter(ctx, caller, id)
	if err != nil {
		return "", err
	}
	now := time.Now()
	name := dl.Action
	if p, err := gust.ParsePath(dl.Action, caller); err == nil {
		name = p.Rel(false) // "[pkg/]name"
	}
	m := queued{ActivationID: gust.NewActivationIDFor(now, name), Namespace: caller, Path: dl.Action, Params: dl.Params, Received: now.UnixMilli()}
	if err := s.queue.publish(ctx, m); err != nil {
		// Put it back rather than lose it.
		if derr := s.queue.deadLetter(ctx, queued{ActivationID: id, Namespace: caller, Path: dl.Action, Params: dl.Params, Received: dl.Received}, dl.Reason, dl.Attempts); derr != nil {
			s.log.Error("dead letter lost during redrive", "activation", id, "err", derr)
		}
		return "", err
	}
	return m.ActivationID, nil
}
