package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	// LocalFree is the local invoker's free memory now (MB); its
	// heartbeat's figure is up to a second old. nil: the heartbeat's.
	LocalFree func() int

	mu       sync.Mutex
	inflight map[string]int // MB of activations sent to each remote invoker and not answered yet
}

// sent counts mb on its way to invoker id until done is called: heartbeats
// come every second, and a burst must not land on one invoker meanwhile.
func (p *Placement) sent(id string, mb int) (done func()) {
	p.mu.Lock()
	if p.inflight == nil {
		p.inflight = map[string]int{}
	}
	p.inflight[id] += mb
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.inflight[id] -= mb; p.inflight[id] <= 0 {
			delete(p.inflight, id)
		}
		p.mu.Unlock()
	}
}

// candidates are the live invokers as placement sees them: free memory
// from the heartbeats, less what was sent since, the local one's measured
// now; without those in skip.
func (p *Placement) candidates(skip []string) []scheduler.Heartbeat {
	live := p.Registry.Live()
	if len(live) <= 1 {
		return live // nothing to choose between
	}
	out := live[:0:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, hb := range live {
		if slices.Contains(skip, hb.ID) {
			continue
		}
		if hb.ID == p.Self && p.LocalFree != nil {
			hb.FreeMB = p.LocalFree()
		} else {
			hb.FreeMB -= p.inflight[hb.ID]
		}
		out = append(out, hb)
	}
	return out
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

// place returns the invoker that should run job, and whether it is remote;
// invokers in skip refused it already.
func (s *Service) place(job *invoker.Job, skip []string) (string, bool) {
	p := s.placement
	if p == nil || p.Registry == nil || p.Registry.Count() <= 1 {
		return "", false // nothing to choose between: every call runs here
	}
	id, ok := scheduler.Pick(p.candidates(skip), job.Action.Path().String(), job.Action.Limits.Memory, job.Action.Exec.Kind)
	if !ok || id == p.Self {
		return "", false
	}
	return id, true
}

// errRefused wraps a remote invoker's refusal to run an activation (it had
// no room): nothing ran, so another invoker may take it.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

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
	done := s.placement.sent(id, job.Action.Limits.Memory)
	msg, err := s.placement.Conn.RequestWithContext(rctx, invokerSubject(id), data)
	done()
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
		err := gust.Errorf(rep.Kind, "%s", rep.Error)
		if rep.Kind == gust.KindUnavailable {
			return Outcome{}, errRefused{err}
		}
		return Outcome{}, err
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
	job, err := s.prepare(ctx, caller, p, nil, req.Params, req.ActivationID, time.UnixMilli(req.Received), limit)
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
