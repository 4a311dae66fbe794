// Package activation carries one invocation from an accepted request to a
// recorded activation: it resolves the action, merges parameters, checks
// payload limits, runs blocking invocations (waiting up to the caller's
// limit) and queues non-blocking ones on the durable work queue.
package activation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/store"
)

// Runner runs one job and returns its record. In all-in-one mode it is the
// local invoker, called directly: a NATS hop to an invoker in the same
// process would cost a third of the throughput (shared/reference/hotpath.md).
type Runner interface {
	Run(ctx context.Context, job *invoker.Job) *gust.Activation
}

// Admitter reserves an invoker's capacity for an activation before it runs.
type Admitter interface {
	Admit(ctx context.Context, job *invoker.Job, wait time.Duration) (release func(), err error)
}

// admitWait is how long a blocking call queues for capacity before it is
// shed with 503.
const admitWait = 2 * time.Second

// Records is where activation records go.
type Records interface {
	Put(act *gust.Activation, durable chan error) error
}

// Service invokes actions.
type Service struct {
	entities *store.Entities
	keys     *store.Keys
	records  Records
	runner   Runner
	queue    *Queue
	limits   gust.SystemLimits
	log      *slog.Logger

	wg                              sync.WaitGroup // background completions of blocking calls that outlived their wait
	stopping                        chan struct{}
	throttle                        *Throttle
	placement                       *Placement
	builtin                         Runner // runs feed actions (gust.ExecFeed); nil: none
	ackWait                         time.Duration
	killed                          atomic.Bool   // Kill was called: act as a crashed invoker
	dead                            chan struct{} // closed by Kill
	deadLetters, retries, throttled metrics.Counter
}

// Config wires a Service.
type Config struct {
	Entities *store.Entities
	Keys     *store.Keys
	Records  Records
	Runner   Runner
	Queue    *Queue
	Limits   gust.SystemLimits
	Logger   *slog.Logger
	// Placement spreads blocking activations over several invokers; nil
	// runs everything on Runner.
	Placement *Placement
	// AckWait is how long a queued invocation may go without a sign of
	// life from its worker before it is delivered to another; default 30s.
	AckWait time.Duration
	// Builtin runs the actions Gust answers in-process (kind gust.ExecFeed:
	// the feed actions of /whisk.system); nil: none.
	Builtin Runner
	// Throttle counts the namespaces' invocations; the services of one
	// process share it. nil: a throttle of the service's own.
	Throttle *Throttle
	Metrics  *metrics.Registry // optional
}

// New returns a Service.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{entities: cfg.Entities, keys: cfg.Keys, records: cfg.Records, runner: cfg.Runner,
		queue: cfg.Queue, limits: cfg.Limits, log: log, stopping: make(chan struct{}), throttle: cfg.Throttle, placement: cfg.Placement, builtin: cfg.Builtin, ackWait: cfg.AckWait, dead: make(chan struct{})}
	if s.throttle == nil {
		s.throttle = NewThrottle()
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = metrics.New()
	}
	s.deadLetters = reg.Counter("gust_dead_letters_total", "Non-blocking invocations moved to the dead-letter stream.", "namespace")
	s.retries = reg.Counter("gust_retries_total", "Failed attempts of non-blocking invocations that were retried.", "namespace")
	s.throttled = reg.Counter("gust_throttled_total", "Invocations refused by a namespace throttle.", "namespace")
	return s
}

// Request is one invocation.
type Request struct {
	Caller   *store.Identity
	Path     gust.Path       // resolved (no "_")
	Params   json.RawMessage // the request body: a JSON object, or empty
	Blocking bool
	Wait     time.Duration // longest wait for a blocking result
	Received time.Time
	Cause    string // id of the activation that caused this one (a trigger's)
	// PayloadChecked says the caller bounded the request's size itself: a
	// web action checks the body as received, before encoding it (base64
	// for binary bodies) into the parameters, which would otherwise count
	// a third more against the limit.
	PayloadChecked bool
	// ID is the activation id to use; empty for a new one. Trigger fires
	// derive their rule activations' ids, so that firing again after a
	// crash is recognised as the same work.
	ID string
	// Resolved is Path as the caller resolved it for Caller already (a web
	// action checks its annotations first): the action checked is the one
	// that runs, and it is not looked up twice. Nil: Invoke resolves it.
	Resolved *store.ResolvedAction
}

// Outcome is what an invocation produced: a finished activation, or only its
// id when it was queued or outlived the wait.
type Outcome struct {
	ActivationID string
	Activation   *gust.Activation // nil when not finished
}

// Invoke runs or queues an invocation.
func (s *Service) Invoke(ctx context.Context, req Request) (Outcome, error) {
	if req.Received.IsZero() {
		req.Received = time.Now()
	}
	limit := s.limits.MaxPayloadSize
	if req.PayloadChecked {
		limit = 0
	}
	job, err := s.prepare(ctx, req.Caller, req.Path, req.Resolved, req.Params, req.ID, req.Received, limit)
	if err != nil {
		return Outcome{}, err
	}
	job.Cause = req.Cause
	ns := req.Caller.Namespace
	lim := req.Caller.Effective(s.limits)
	if !req.Blocking {
		// Queued work takes a concurrency slot when a worker starts it.
		if err := s.throttle.admitRate(ns, lim.InvocationsPerMinute); err != nil {
			s.throttled.Inc(ns)
			return Outcome{}, err
		}
		if err := s.queue.Enqueue(ctx, job, req.Params); err != nil {
			return Outcome{}, err
		}
		return Outcome{ActivationID: job.ActivationID}, nil
	}
	if err := s.throttle.admit(ns, lim.InvocationsPerMinute, lim.ConcurrentInvocations); err != nil {
		s.throttled.Inc(ns)
		return Outcome{}, err
	}
	var refused []string
	for {
		id, remote := s.place(job, refused)
		if !remote {
			break
		}
		out, err := s.invokeRemote(ctx, id, job, req.Params, req.Wait, req.PayloadChecked)
		var no errRefused
		if errors.As(err, &no) && len(refused) == 0 {
			// It had no room after all: step over to the next one, once.
			refused = append(refused, id)
			continue
		}
		if !errors.Is(err, errNoResponder) {
			s.throttle.release(ns)
			return out, err
		}
		// The invoker left between its last heartbeat and now: run here.
		break
	}
	release, err := s.admit(ctx, job, admitWait)
	if err != nil {
		s.throttle.release(ns)
		return Outcome{}, err
	}
	return s.runBlocking(ctx, job, req.Wait, release), nil
}

// admit reserves capacity for job on the runner, when it keeps a budget.
func (s *Service) admit(ctx context.Context, job *invoker.Job, wait time.Duration) (func(), error) {
	if a, ok := s.runner.(Admitter); ok && runsInSandbox(job) {
		return a.Admit(ctx, job, wait)
	}
	return func() {}, nil
}

// runBlocking runs job, waiting at most wait for its end. A run that
// outlives the wait goes on and records its activation when it ends.
func (s *Service) runBlocking(ctx context.Context, job *invoker.Job, wait time.Duration, release func()) Outcome {
	done := make(chan *gust.Activation, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.throttle.release(job.Namespace)
		defer release()
		// The activation belongs to the platform once accepted: a client
		// that hangs up does not cancel it.
		act := s.run(context.WithoutCancel(ctx), job)
		if err := s.records.Put(act, nil); err != nil {
			s.log.Error("activation record not stored", "activation", act.ActivationID, "err", err)
		}
		done <- act
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case act := <-done:
		return Outcome{ActivationID: job.ActivationID, Activation: act}
	case <-timer.C:
	case <-ctx.Done():
	}
	return Outcome{ActivationID: job.ActivationID}
}

// Kill makes the service behave as if its process died: it stops taking
// queued work and drops every result it has not yet acknowledged, so the
// queue delivers that work to another invoker. For failover tests.
func (s *Service) Kill() {
	if !s.killed.Swap(true) {
		close(s.dead)
	}
}

// Dead is closed once Kill was called.
func (s *Service) Dead() <-chan struct{} { return s.dead }

// Wait blocks until background runs have ended or ctx is done.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepare resolves the action (unless ra is it already) and builds the
// job; an empty id gets a new one, tagged with the record's name.
//
// maxPayload bounds the merged parameters (0: no bound, when the caller
// checked the request itself).
func (s *Service) prepare(ctx context.Context, caller *store.Identity, p gust.Path, ra *store.ResolvedAction, body json.RawMessage, id string, received time.Time, maxPayload int) (*invoker.Job, error) {
	if ra == nil {
		// Resolution decides what the caller may reach: its own actions and
		// those of published packages, directly or through a binding.
		var err error
		if ra, err = s.entities.ResolveAction(p, caller.Namespace); err != nil {
			return nil, err
		}
	}
	rec, a := ra.Record, ra.Action
	params, err := MergeInherited(ra.Params, a, body, maxPayload)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = gust.NewActivationIDFor(received, a.RecordName())
	}
	job := &invoker.Job{
		ActivationID: id,
		Namespace:    caller.Namespace,
		Subject:      caller.Subject,
		Action:       a,
		Digest:       rec.Digest,
		Params:       params,
		Received:     received,
		Code:         s.codeLoader(rec, a),
		Binding:      ra.Binding,
	}
	if a.Annotations.IsTrue("provide-api-key") {
		job.APIKey = caller.Auth()
	}
	return job, nil
}

func (s *Service) codeLoader(rec *store.Record, a *gust.Action) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		exec := a.Exec
		if rec.CodeRef != "" {
			code, err := s.entities.LoadCode(ctx, rec.CodeRef)
			if err != nil {
				return nil, err
			}
			exec.Code = code
		}
		return exec.DecodeCode()
	}
}

// MergeParams merges the action's parameters (those not marked init) under
// the request body, refusing to override parameters of an action annotated
// final, and enforces the payload limit.
func MergeParams(a *gust.Action, body json.RawMessage, maxPayload int) (json.RawMessage, error) {
	return MergeInherited(nil, a, body, maxPayload)
}

// MergeInherited is MergeParams for an action in a package: OpenWhisk's
// precedence is inherited (package < binding, see store.ResolveAction) <
// action < request body, and final protects inherited parameters too.
func MergeInherited(inherited gust.KeyValues, a *gust.Action, body json.RawMessage, maxPayload int) (json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	bound := a.Parameters
	if len(inherited) > 0 {
		bound = inherited.Merge(a.Parameters)
	}
	if len(bound) == 0 && (len(body) == 0 || body[0] == '{' && json.Valid(body)) {
		// Nothing to merge: the body is the parameters (checked without
		// decoding it, which is most of the cost of an invoke's merge).
		if len(body) == 0 {
			return json.RawMessage("{}"), nil
		}
		return body, nil
	}
	var req map[string]json.RawMessage
	if len(body) > 0 {
		if body[0] != '{' {
			return nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nthe parameters must be a JSON object.")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\n%v", err)
		}
	}
	merged := bound.Object(true)
	final := a.Annotations.IsTrue("final")
	for k, v := range req {
		if _, bound := merged[k]; bound && final {
			return nil, gust.Errorf(gust.KindInvalid, gust.MsgReservedParam)
		}
		merged[k] = v
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("merge parameters: %w", err)
	}
	if maxPayload > 0 && len(out) > maxPayload {
		return nil, gust.Errorf(gust.KindTooLarge, "Request larger than allowed: %d > %d bytes.", len(out), maxPayload)
	}
	return out, nil
}
