package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/scheduler"
)

// Placement chooses an invoker per blocking activation among the live ones
// and sends the activation there over NATS request-reply, unless the choice
// is the local invoker, which is called directly.
type Placement struct {
	Self     string // the local invoker's id
	Registry *scheduler.Registry
	Conn     *nats.Conn
}

func invokerSubject(id string) string { return "gust.invoker." + id }

// remoteRequest asks an invoker to run one activation.
type remoteRequest struct {
	queued
	Wait           int64 `json:"wait"`                     // ms the caller waits
	PayloadChecked bool  `json:"payloadChecked,omitempty"` // Request.PayloadChecked
}

// remoteReply is an invoker's answer: the activation, or why it did not run.
type remoteReply struct {
	Activation *gust.Activation `json:"activation,omitempty"`
	Error      string           `json:"error,omitempty"`
	Kind       gust.Kind        `json:"kind,omitempty"`
}

// place returns the invoker that should run job, and whether it is remote.
func (s *Service) place(job *invoker.Job) (string, bool) {
	p := s.placement
	if p == nil || p.Registry == nil {
		return "", false
	}
	id, ok := scheduler.Pick(p.Registry.Live(), job.Action.Path().String(), job.Action.Limits.Memory, job.Action.Exec.Kind)
	if !ok || id == p.Self {
		return "", false
	}
	return id, true
}

// invokeRemote runs job on invoker id and waits up to wait for it. The
// remote invoker records the activation; a reply that does not come in time
// leaves the caller with the activation id (202), as a local run would.
func (s *Service) invokeRemote(ctx context.Context, id string, job *invoker.Job, body json.RawMessage, wait time.Duration, payloadChecked bool) (Outcome, error) {
	req := remoteRequest{queued: queued{
		ActivationID: job.ActivationID, Namespace: job.Namespace, Path: requestPath(job),
		Params: body, Received: job.Received.UnixMilli(), Cause: job.Cause,
	}, Wait: wait.Milliseconds(), PayloadChecked: payloadChecked}
	data, err := json.Marshal(req)
	if err != nil {
		return Outcome{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, err := s.placement.Conn.RequestWithContext(rctx, invokerSubject(id), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Outcome{}, errNoResponder
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return Outcome{ActivationID: job.ActivationID}, nil
	case err != nil:
		return Outcome{}, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("invoke on %s: %w", id, err))
	}
	var rep remoteReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return Outcome{}, fmt.Errorf("reply of invoker %s: %w", id, err)
	}
	if rep.Activation == nil {
		return Outcome{}, gust.Errorf(rep.Kind, "%s", rep.Error)
	}
	return Outcome{ActivationID: job.ActivationID, Activation: rep.Activation}, nil
}

var errNoResponder = errors.New("invoker gone")

// Serve answers activations sent to this service's invoker until ctx ends.
func (s *Service) Serve(ctx context.Context, nc *nats.Conn, id string) error {
	sub, err := nc.Subscribe(invokerSubject(id), func(msg *nats.Msg) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveOne(context.WithoutCancel(ctx), msg)
		}()
	})
	if err != nil {
		return fmt.Errorf("serve invoker %s: %w", id, err)
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = sub.Drain()
		case <-s.dead:
			_ = sub.Unsubscribe()
		}
	}()
	return nil
}

func (s *Service) serveOne(ctx context.Context, msg *nats.Msg) {
	reply := func(r remoteReply) {
		b, _ := json.Marshal(r)
		_ = msg.Respond(b)
	}
	var req remoteRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply(remoteReply{Error: "bad request", Kind: gust.KindInvalid})
		return
	}
	caller, ok := s.keys.ByNamespace(req.Namespace)
	p, err := gust.ParsePath(req.Path, req.Namespace)
	if !ok || err != nil {
		reply(remoteReply{Error: gust.MsgNotFound, Kind: gust.KindNotFound})
		return
	}
	limit := s.limits.MaxPayloadSize
	if req.PayloadChecked {
		limit = 0
	}
	job, err := s.prepare(ctx, caller, p, req.Params, req.ActivationID, time.UnixMilli(req.Received), limit)
	if err != nil {
		reply(remoteReply{Error: gust.MessageOf(err), Kind: gust.KindOf(err)})
		return
	}
	job.Cause = req.Cause
	release, err := s.admit(ctx, job, admitWait)
	if err != nil {
		reply(remoteReply{Error: gust.MessageOf(err), Kind: gust.KindOf(err)})
		return
	}
	act := s.run(ctx, job)
	release()
	if err := s.records.Put(act, nil); err != nil {
		s.log.Error("activation record not stored", "activation", act.ActivationID, "err", err)
	}
	reply(remoteReply{Activation: act})
}
