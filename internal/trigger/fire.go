// Package trigger fires triggers and runs the feed providers that fire
// them: alarms (cron, interval, once), NATS subjects, MQTT topics and
// CloudEvents over HTTP. Firing records a trigger activation and starts
// the action of every active rule asynchronously, through the activation
// service's durable work queue.
package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Invoker starts activations: the activation service.
type Invoker interface {
	Invoke(ctx context.Context, req activation.Request) (activation.Outcome, error)
}

// Records stores activation records.
type Records interface {
	Put(act *gust.Activation, durable chan error) error
}

// Firer fires triggers.
type Firer struct {
	entities *store.Entities
	invoker  Invoker
	records  Records
	limits   gust.SystemLimits
	log      *slog.Logger
	throttle *activation.RateCounter // firesPerMinute
	now      func() time.Time
}

// FirerConfig wires a Firer.
type FirerConfig struct {
	Entities *store.Entities
	Invoker  Invoker
	Records  Records
	Limits   gust.SystemLimits
	Logger   *slog.Logger
}

// NewFirer returns a Firer.
func NewFirer(cfg FirerConfig) *Firer {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Firer{entities: cfg.Entities, invoker: cfg.Invoker, records: cfg.Records, limits: cfg.Limits,
		log: log, throttle: activation.NewRateCounter(), now: time.Now}
}

// Fire is one firing of a trigger.
type Fire struct {
	Caller  *store.Identity
	Trigger gust.Path       // resolved: no "_"
	Payload json.RawMessage // the event: a JSON object, or empty
	// Headers are the fire request's HTTP headers (lowercase names), passed
	// to the rules' actions as __ow_headers; nil for fires by feeds.
	Headers map[string]string
	// ActivationID is the trigger activation's id; empty for a new one. A
	// feed that may fire the same event twice (after a crash) gives the
	// same id, and the rules' activations get ids derived from it.
	ActivationID string
	// Durable waits until the trigger activation is stored.
	Durable bool
}

// Rule log statuses, OpenWhisk's activation status codes.
const (
	ruleStarted       = 0
	ruleRefused       = 1 // the action could not be started: missing, forbidden, throttled
	rulePlatformError = 3
)

// ruleLog is one line of a trigger activation's logs, as OpenWhisk writes it.
type ruleLog struct {
	StatusCode   int    `json:"statusCode"`
	Success      bool   `json:"success"`
	ActivationID string `json:"activationId,omitempty"`
	Error        string `json:"error,omitempty"`
	Rule         string `json:"rule"`
	Action       string `json:"action"`
}

// Fire fires a trigger. It returns the trigger activation's id, or "" when
// the trigger has no active rule: then nothing runs and nothing is
// recorded (the API answers 204).
func (f *Firer) Fire(ctx context.Context, req Fire) (string, error) {
	start := f.now()
	if req.Trigger.Namespace != req.Caller.Namespace || req.Trigger.Package != "" {
		return "", gust.Forbidden(req.Trigger.String())
	}
	rec, err := f.entities.GetType(req.Trigger, store.TypeTrigger)
	if err != nil {
		return "", err
	}
	t, err := rec.Trigger()
	if err != nil {
		return "", err
	}
	// The event wins over the trigger's parameters; the same checks as an
	// invoke's body apply (a JSON object, within the payload limit).
	args, err := activation.MergeParams(&gust.Action{Parameters: t.Parameters}, req.Payload, f.limits.MaxPayloadSize)
	if err != nil {
		return "", err
	}
	lim := req.Caller.Effective(f.limits)
	if err := f.throttle.Admit(req.Caller.Namespace, lim.FiresPerMinute, start); err != nil {
		return "", err
	}
	keys := make([]string, 0, len(t.Rules))
	for k, r := range t.Rules {
		if r.Status == gust.RuleActive {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", nil
	}
	sort.Strings(keys)
	if req.Headers != nil {
		if args, err = withHeaders(args, req.Headers); err != nil {
			return "", err
		}
	}
	id := req.ActivationID
	if id == "" {
		id = gust.NewActivationIDFor(start, req.Trigger.Name) // recorded under the trigger's name
	}
	logs := make([]string, 0, len(keys))
	for _, k := range keys {
		r := t.Rules[k]
		line := f.startRule(ctx, req.Caller, id, k, r.Action, args, start)
		b, _ := json.Marshal(line) // a struct of strings and ints
		logs = append(logs, string(b))
	}
	result := json.RawMessage(req.Payload)
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	act := &gust.Activation{
		Namespace: req.Caller.Namespace, Name: t.Name, Subject: req.Caller.Subject, ActivationID: id,
		Start:    start.UnixMilli(), // no End: a trigger activation never ends
		Response: gust.Response{StatusCode: gust.StatusSuccess, Result: result},
		Logs:     logs, Version: t.Version, Publish: t.Publish, Annotations: gust.KeyValues{},
	}
	var durable chan error
	if req.Durable {
		durable = make(chan error, 1)
	}
	if err := f.records.Put(act, durable); err != nil {
		return "", gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("record trigger activation: %w", err))
	}
	if durable != nil {
		if err := <-durable; err != nil {
			return "", gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("record trigger activation: %w", err))
		}
	}
	return id, nil
}

// startRule queues the action of one rule and returns its log line.
func (f *Firer) startRule(ctx context.Context, caller *store.Identity, triggerID, rule string, action gust.EntityRef, args json.RawMessage, received time.Time) ruleLog {
	line := ruleLog{Rule: rule, Action: action.String()}
	p, err := action.FullPath()
	if err == nil {
		var out activation.Outcome
		out, err = f.invoker.Invoke(ctx, activation.Request{
			Caller: caller, Path: p, Params: args, Received: received,
			Cause: triggerID, ID: RuleActivationID(triggerID, rule),
		})
		line.ActivationID = out.ActivationID
	}
	if err != nil {
		line.StatusCode, line.Error = ruleRefused, gust.MessageOf(err)
		if k := gust.KindOf(err); k == gust.KindInternal || k == gust.KindUnavailable {
			line.StatusCode = rulePlatformError
		}
		f.log.Warn("rule action not started", "trigger", triggerID, "rule", rule, "err", err)
		return line
	}
	line.Success = true
	return line
}

// RuleActivationID derives the activation id of rule's action from the
// trigger activation's id: the same time prefix (ids sort by time) and a
// hash of both. Firing the same trigger activation twice thus queues the
// same activations, which the queue and its workers recognise.
func RuleActivationID(triggerID, rule string) string {
	sum := sha256.Sum256([]byte(triggerID + "\x00" + rule))
	if len(triggerID) != 32 {
		return hex.EncodeToString(sum[:16])
	}
	return triggerID[:12] + hex.EncodeToString(sum[:10])
}

// withHeaders adds __ow_headers to an object of arguments.
func withHeaders(args json.RawMessage, headers map[string]string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return nil, fmt.Errorf("trigger arguments: %w", err)
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return nil, err
	}
	m["__ow_headers"] = h
	return json.Marshal(m)
}
