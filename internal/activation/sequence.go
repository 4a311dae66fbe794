package activation

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/store"
)

// OpenWhisk's sequence messages, verbatim.
const (
	MsgSequenceTooLong   = "Too many actions in the sequence."
	MsgSequenceNoComp    = "No component specified for the sequence."
	MsgSequenceSelf      = "Sequence may not refer to itself."
	MsgSequenceCompGone  = "Sequence component does not exist."
	sequenceActionsParam = "_actions"
)

// run runs job where its kind runs: a sequence here, a feed action on the
// builtin runner, anything else on the invoker.
func (s *Service) run(ctx context.Context, job *invoker.Job) *gust.Activation {
	switch job.Action.Exec.Kind {
	case gust.ExecSequence:
		return s.runSequence(ctx, job, &seqBudget{atomic: s.limits.SequenceMaxLength})
	case gust.ExecFeed:
		if s.builtin != nil {
			return s.builtin.Run(ctx, job)
		}
	}
	return s.runner.Run(ctx, job)
}

// runsInSandbox reports whether job's kind takes an invoker's capacity:
// sequences run nothing themselves (their components do) and feed actions
// are answered in-process.
func runsInSandbox(job *invoker.Job) bool {
	k := job.Action.Exec.Kind
	return k != gust.ExecSequence && k != gust.ExecFeed
}

// seqBudget bounds one topmost sequence: atomic actions run (OpenWhisk's
// limit counts them after inlining nested sequences) and nesting depth, so
// that a cycle made by later updates cannot recurse forever.
type seqBudget struct {
	atomic int
	depth  int
}

// runSequence runs the components of the sequence job in order: the first
// gets the sequence's parameters, each next one the previous result. The
// first failure ends the chain and is the sequence's result. Every
// component's activation is recorded with the sequence's id as cause; the
// sequence's own record (returned, recorded by the caller) lists their ids
// as logs and sums their durations.
func (s *Service) runSequence(ctx context.Context, job *invoker.Job, budget *seqBudget) *gust.Activation {
	start := time.Now()
	a := job.Action
	act := &gust.Activation{
		Namespace: job.Namespace, Name: a.Name, Subject: job.Subject, ActivationID: job.ActivationID,
		Cause: job.Cause, Version: a.Version, Publish: a.Publish, Logs: []string{},
		Response: gust.Response{StatusCode: gust.StatusSuccess, Result: json.RawMessage("{}")},
	}
	limits := a.Limits
	budget.depth++
	defer func() { budget.depth-- }()

	input, err := dropParam(job.Params, sequenceActionsParam)
	caller, ok := s.keys.ByNamespace(job.Namespace)
	switch {
	case err != nil:
		act.Response = failure(gust.StatusInternalError, "The sequence's parameters could not be read.")
	case !ok:
		act.Response = failure(gust.StatusInternalError, gust.MsgNotFound)
	case budget.depth > s.limits.SequenceMaxLength:
		act.Response = failure(gust.StatusApplicationError, MsgSequenceTooLong)
	default:
		for _, name := range a.Exec.Components {
			comp, resp := s.runComponent(ctx, caller, job, name, input, budget)
			if comp == nil {
				act.Response = resp
				break
			}
			act.Logs = append(act.Logs, comp.ActivationID)
			act.Duration += comp.Duration
			limits.Memory = max(limits.Memory, componentMemory(comp))
			act.Response = comp.Response
			if comp.Response.StatusCode != gust.StatusSuccess {
				break
			}
			input = comp.Response.Result
		}
	}
	end := time.Now()
	act.Start, act.End = start.UnixMilli(), end.UnixMilli()
	kv := gust.KeyValues{}.
		Set("topmost", job.CausedBy == "").
		Set("path", a.Path().Rel(true)).
		Set("kind", gust.ExecSequence).
		Set("limits", limits)
	if !job.Received.IsZero() {
		kv = kv.Set("waitTime", start.Sub(job.Received).Milliseconds())
	}
	if job.CausedBy != "" {
		kv = kv.Set("causedBy", job.CausedBy)
	}
	if job.Binding != "" {
		kv = kv.Set("binding", job.Binding)
	}
	act.Annotations = kv
	return act
}

// runComponent runs one component of seq with input and records its
// activation. It returns nil and the sequence's response when the
// component could not start.
func (s *Service) runComponent(ctx context.Context, caller *store.Identity, seq *invoker.Job, name string, input json.RawMessage, budget *seqBudget) (*gust.Activation, gust.Response) {
	p, err := gust.ParsePath(name, caller.Namespace)
	if err != nil {
		return nil, failure(gust.StatusApplicationError, MsgSequenceCompGone)
	}
	ra, err := s.entities.ResolveAction(p, caller.Namespace)
	if err != nil {
		msg := gust.MessageOf(err)
		if gust.KindOf(err) == gust.KindNotFound || gust.KindOf(err) == gust.KindConflict {
			msg = MsgSequenceCompGone
		}
		return nil, failure(gust.StatusApplicationError, msg)
	}
	nested := ra.Action.Exec.Kind == gust.ExecSequence
	if !nested {
		if budget.atomic <= 0 {
			return nil, failure(gust.StatusApplicationError, MsgSequenceTooLong)
		}
		budget.atomic--
	}
	params, err := componentParams(ra, input, s.limits.MaxPayloadSize)
	if err != nil {
		return nil, failure(gust.StatusApplicationError, gust.MessageOf(err))
	}
	now := time.Now()
	job := &invoker.Job{
		ActivationID: gust.NewActivationIDFor(now, ra.Action.RecordName()),
		Namespace:    seq.Namespace,
		Subject:      seq.Subject,
		Action:       ra.Action,
		Digest:       ra.Record.Digest,
		Params:       params,
		Received:     now,
		Code:         s.codeLoader(ra.Record, ra.Action),
		Cause:        seq.ActivationID,
		CausedBy:     "sequence",
		Binding:      ra.Binding,
	}
	if ra.Action.Annotations.IsTrue("provide-api-key") {
		job.APIKey = caller.Auth()
	}
	var act *gust.Activation
	if nested {
		act = s.runSequence(ctx, job, budget)
	} else {
		// Components are not throttled (the sequence was), but they take
		// the invoker's capacity like any activation.
		release, err := s.admit(ctx, job, admitWait)
		if err != nil {
			return nil, failure(gust.StatusInternalError, gust.MessageOf(err))
		}
		act = s.run(ctx, job)
		release()
	}
	if err := s.records.Put(act, nil); err != nil {
		s.log.Error("sequence component not recorded", "activation", act.ActivationID, "sequence", seq.ActivationID, "err", err)
	}
	return act, gust.Response{}
}

// componentParams merges a component's parameters under its input. An
// array (a previous component's result) is passed on as it is: there is
// nothing to merge it with.
func componentParams(ra *store.ResolvedAction, input json.RawMessage, maxPayload int) (json.RawMessage, error) {
	if t := bytes.TrimSpace(input); len(t) > 0 && t[0] == '[' {
		return t, nil
	}
	return MergeInherited(ra.Params, ra.Action, input, maxPayload)
}

// componentMemory reads the memory limit a component ran with.
func componentMemory(act *gust.Activation) int {
	var l gust.Limits
	if raw, ok := act.Annotations.Get("limits"); ok {
		_ = json.Unmarshal(raw, &l) // absent or odd: 0 leaves the maximum alone
	}
	return l.Memory
}

func failure(status gust.Status, msg string) gust.Response {
	return gust.Response{StatusCode: status, Result: gust.ErrorResult(msg)}
}

// dropParam removes key from a JSON object of parameters.
func dropParam(params json.RawMessage, key string) (json.RawMessage, error) {
	if !bytes.Contains(params, []byte(`"`+key+`"`)) {
		return params, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil {
		return nil, err
	}
	delete(m, key)
	return json.Marshal(m)
}
