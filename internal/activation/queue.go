package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
)

const (
	queueStream   = "INVOKE"
	queueConsumer = "invokers"
	// ackWait is how long a worker may hold a message without a sign of
	// life; workers send progress every ackWait/3 while an action runs.
	ackWait = 30 * time.Second
)

// Queue is the durable work queue of non-blocking invocations: the 202 is
// sent only once JetStream has the message, and a worker acknowledges it
// only after the activation record is stored, so accepted work survives a
// crash of any one component.
type Queue struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	dlq    jetstream.Stream
}

// queued is one message on the queue.
type queued struct {
	ActivationID string          `json:"activationId"`
	Namespace    string          `json:"namespace"`
	Path         string          `json:"path"` // fully qualified action name
	Params       json.RawMessage `json:"params,omitempty"`
	Received     int64           `json:"received"`        // epoch ms
	Cause        string          `json:"cause,omitempty"` // the trigger activation that caused it
}

// OpenQueue creates or opens the work-queue stream.
func OpenQueue(ctx context.Context, js jetstream.JetStream, replicas int) (*Queue, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        queueStream,
		Description: "Gust non-blocking invocations",
		Subjects:    []string{"invoke.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("invoke stream: %w", err)
	}
	dlq, err := openDLQ(ctx, js, replicas)
	if err != nil {
		return nil, err
	}
	return &Queue{js: js, stream: st, dlq: dlq}, nil
}

// Enqueue stores one invocation, deduplicated by activation id.
func (q *Queue) Enqueue(ctx context.Context, job *invoker.Job, body json.RawMessage) error {
	return q.publish(ctx, queued{
		ActivationID: job.ActivationID,
		Namespace:    job.Namespace,
		Path:         requestPath(job),
		Params:       body,
		Received:     job.Received.UnixMilli(),
		Cause:        job.Cause,
	})
}

// requestPath is the path a job was asked for: through its binding when it
// had one, so that the worker resolves the same parameters and annotations.
func requestPath(job *invoker.Job) string {
	if job.Binding != "" {
		return "/" + job.Binding + "/" + job.Action.Name
	}
	return job.Action.Path().String()
}

// publish stores one queued invocation.
func (q *Queue) publish(ctx context.Context, m queued) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode invocation: %w", err)
	}
	msg := &nats.Msg{Subject: "invoke." + m.ActivationID, Data: data}
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ActivationID)); err != nil {
		return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("enqueue invocation: %w", err))
	}
	return nil
}

// Lookup finds stored records, to recognise a redelivered invocation.
type Lookup interface {
	Get(ctx context.Context, ns, id string) (json.RawMessage, error)
}

// Work consumes the queue with up to workers activations at a time until
// ctx ends; then it stops taking messages and waits for those in progress.
func (s *Service) Work(ctx context.Context, lookup Lookup, workers int) error {
	wait := s.ackWait
	if wait <= 0 {
		wait = ackWait
	}
	cons, err := s.queue.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       queueConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       wait,
		MaxDeliver:    -1,
		MaxAckPending: 1024,
	})
	if err != nil {
		return fmt.Errorf("invoke consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(workers))
	if err != nil {
		return fmt.Errorf("consume invocations: %w", err)
	}
	go func() {
		select {
		case <-ctx.Done():
			it.Drain()
		case <-s.dead:
			it.Stop()
		}
	}()
	// stop ends waits for a namespace's concurrency slot when the worker
	// stops or dies; the message then goes to another worker.
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.dead:
			cancel()
		case <-stop.Done():
		}
	}()
	sem := make(chan struct{}, workers)
	for !s.killed.Load() {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			s.log.Warn("invocation queue", "err", err)
			continue
		}
		// A slot is taken before the next message is pulled, so a busy
		// node leaves work in the stream for other nodes.
		sem <- struct{}{}
		s.wg.Add(1)
		go func() {
			w := &workerSlot{sem: sem, held: true}
			defer func() { w.release(); s.wg.Done() }()
			s.handle(context.WithoutCancel(ctx), stop, lookup, msg, w)
		}()
	}
	return nil
}

// workerSlot is one of Work's worker slots, held by one message's
// goroutine, which gives it up while its namespace is at its limit.
type workerSlot struct {
	sem  chan struct{}
	held bool
}

func (w *workerSlot) release() {
	if w.held {
		<-w.sem
		w.held = false
	}
}

// take waits for a slot again, until stop ends.
func (w *workerSlot) take(stop context.Context) error {
	select {
	case w.sem <- struct{}{}:
		w.held = true
		return nil
	case <-stop.Done():
		return stop.Err()
	}
}

// handle runs one queued invocation and acknowledges it once its record is
// stored. A message whose record already exists was run before a crash or
// a lost ack: it is acknowledged without running again.
//
// ctx carries values only (an accepted activation runs to its end); stop
// ends when the worker stops taking work, which ends waiting for a slot.
// slot is the worker slot the message holds.
func (s *Service) handle(ctx, stop context.Context, lookup Lookup, msg jetstream.Msg, slot *workerSlot) {
	var q queued
	if err := json.Unmarshal(msg.Data(), &q); err != nil {
		s.log.Error("drop undecodable invocation", "err", err)
		_ = msg.Term()
		return
	}
	if _, err := lookup.Get(ctx, q.Namespace, q.ActivationID); err == nil {
		_ = msg.Ack()
		return
	}
	alive := s.keepAlive(msg)
	defer alive()
	caller, ok := s.keys.ByNamespace(q.Namespace)
	if ok {
		// The namespace's concurrency limit holds for queued work too. At
		// the limit the invocation waits here, as for capacity, rather
		// than going back to the queue: a redelivery would count as an
		// attempt. It waits without a worker slot, so that a namespace at
		// its limit does not hold the workers other namespaces' work needs;
		// the message stays unacknowledged and kept alive meanwhile.
		limit := caller.Effective(s.limits).ConcurrentInvocations
		if !s.throttle.tryAcquire(q.Namespace, limit) {
			slot.release()
			if err := s.throttle.acquire(stop, q.Namespace, limit); err != nil {
				return // stopping: the message goes to another worker
			}
			defer s.throttle.release(q.Namespace)
			if err := slot.take(stop); err != nil {
				return // stopping: the message goes to another worker
			}
		} else {
			defer s.throttle.release(q.Namespace)
		}
	}

	received := time.UnixMilli(q.Received)
	var act *gust.Activation
	var job *invoker.Job
	err := error(gust.ErrNotFound)
	p, perr := gust.ParsePath(q.Path, q.Namespace)
	if ok && perr == nil {
		job, err = s.prepare(ctx, caller, p, nil, q.Params, q.ActivationID, received, s.limits.MaxPayloadSize)
	}
	if job != nil {
		job.Cause = q.Cause
	}
	attempt := 1
	if md, merr := msg.Metadata(); merr == nil {
		attempt = int(md.NumDelivered)
	}
	deadReason := ""
	if err != nil {
		act = failedActivation(q, p, err)
	} else {
		retries, maxAge := retryPolicy(job.Action)
		switch {
		case time.Since(received) > maxAge:
			deadReason = fmt.Sprintf("The invocation was older than its maxEventAge of %s before it could run.", maxAge)
			act = failedActivation(q, p, gust.Errorf(gust.KindInvalid, "%s", deadReason))
		case attempt > retries+1+crashAllowance:
			deadReason = fmt.Sprintf("The invocation was delivered %d times without completing.", attempt)
			act = failedActivation(q, p, gust.Errorf(gust.KindInvalid, "%s", deadReason))
		default:
			// Queued work waits for capacity as long as it takes.
			release, aerr := s.admit(ctx, job, 0)
			if aerr != nil {
				_ = msg.NakWithDelay(time.Second)
				return
			}
			act = s.run(ctx, job)
			release()
			if s.killed.Load() {
				return // a dead worker acknowledges nothing
			}
			if retryable(act.Response.StatusCode) {
				if attempt <= retries {
					// Another attempt will come; only the last one is recorded.
					s.log.Info("activation failed, retrying", "activation", q.ActivationID, "attempt", attempt, "status", act.Response.StatusCode.String())
					s.retries.Inc(q.Namespace)
					_ = msg.NakWithDelay(backoff(attempt - 1))
					return
				}
				deadReason = fmt.Sprintf("The last of %d attempts ended with %s: %s", attempt, act.Response.StatusCode, errorText(act.Response.Result))
			}
		}
		if attempt > 1 {
			act.Annotations = act.Annotations.Set("attempts", attempt)
		}
	}
	if s.killed.Load() {
		return // a dead worker acknowledges nothing
	}
	if deadReason != "" {
		if err := s.queue.deadLetter(ctx, q, deadReason, attempt); err != nil {
			s.log.Error("dead letter not stored; the invocation will be redelivered", "activation", q.ActivationID, "err", err)
			_ = msg.Nak()
			return
		}
		s.deadLetters.Inc(q.Namespace)
	}
	durable := make(chan error, 1)
	if err := s.records.Put(act, durable); err != nil {
		s.log.Error("queued activation not recorded; it will be redelivered", "activation", q.ActivationID, "err", err)
		_ = msg.Nak()
		return
	}
	if err := <-durable; err != nil {
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}

// errorText returns the "error" value of a result, for messages.
func errorText(result json.RawMessage) string {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(result, &v) != nil || len(v.Error) == 0 {
		return string(result)
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil {
		return s
	}
	return string(v.Error)
}

// keepAlive tells the queue the message is still being worked on.
func (s *Service) keepAlive(msg jetstream.Msg) (stop func()) {
	every := s.ackWait / 3
	if every <= 0 {
		every = ackWait / 3
	}
	t := time.NewTicker(every)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				if s.killed.Load() {
					return
				}
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}

// failedActivation records an invocation that could not start, e.g. because
// its action was deleted after the invocation was accepted.
func failedActivation(q queued, p gust.Path, err error) *gust.Activation {
	now := time.Now().UnixMilli()
	status := gust.StatusDeveloperError
	if gust.KindOf(err) == gust.KindInternal || gust.KindOf(err) == gust.KindUnavailable {
		status = gust.StatusInternalError
	}
	return &gust.Activation{
		Namespace:    q.Namespace,
		Name:         p.Name,
		Subject:      q.Namespace,
		ActivationID: q.ActivationID,
		Start:        now,
		End:          now,
		Response:     gust.Response{StatusCode: status, Result: gust.ErrorResult(gust.MessageOf(err))},
		Logs:         []string{},
		Version:      "0.0.0",
		Annotations:  gust.KeyValues{}.Set("path", p.Rel(true)).Set("waitTime", now-q.Received),
	}
}
