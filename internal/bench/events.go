package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/trigger"
)

// Variants of trigger-fire.
const (
	variantInvokeNB  = "invoke (non-blocking)"
	variantFire      = "fire"
	variantInvokeRec = "invoke→record"
	variantFireRec   = "fire→record"
)

// Entities of trigger-fire. Actions, triggers and rules share one name
// space per namespace, so each has a name of its own.
const (
	firedAction = actionPrefix + "fired"
	benchTrig   = actionPrefix + "trigger"
	benchRule   = actionPrefix + "rule"
)

// prepareTrigger creates a trigger with one rule to a no-op Go reactor
// action. The bench waits for the rule's activation by the id that
// trigger.RuleActivationID derives from the trigger activation's; a first
// fire checks that the trigger activation's logs name that id.
func (r *runner) prepareTrigger(ctx context.Context, conns int) (*load, error) {
	_, a, err := r.benchAction(ctx, "noop-go-reactor")
	if err != nil {
		return nil, err
	}
	if err := r.createAction(ctx, firedAction, a); err != nil {
		return nil, err
	}
	if _, err := r.tgt.api.PutTrigger(ctx, benchTrig, client.EntityPut{}, true); err != nil {
		return nil, err
	}
	r.created(func(ctx context.Context) error { return r.tgt.api.DeleteTrigger(ctx, benchTrig) })
	if _, err := r.tgt.api.PutRule(ctx, benchRule, client.RulePut{Trigger: "/_/" + benchTrig, Action: "/_/" + firedAction}, true); err != nil {
		return nil, err
	}
	r.created(func(ctx context.Context) error { return r.tgt.api.DeleteRule(ctx, benchRule) })
	ns, err := r.tgt.namespace(ctx)
	if err != nil {
		return nil, err
	}
	ruleID := func(triggerID string) string { return trigger.RuleActivationID(triggerID, ns+"/"+benchRule) }
	if err := r.checkRuleID(ctx, ruleID); err != nil {
		return nil, err
	}

	c := newClient(conns)
	invoke, fire := r.tgt.nonBlocking(c, firedAction), r.tgt.fire(c, benchTrig)
	measure := func(ctx context.Context, conc int) ([]variant, error) {
		var vs []variant
		for _, m := range []struct {
			name, base string
			req        *request
		}{{variantInvokeNB, "", invoke}, {variantFire, variantInvokeNB, fire}} {
			f, err := r.accepts(ctx, conc, firedAction, m.req)
			if err != nil {
				return nil, err
			}
			vs = append(vs, variant{name: m.name, f: f, base: m.base})
		}
		// One at a time, in the rounds of the first concurrency.
		if conc == r.opt.conc[0] {
			inv, err := r.toRecord(ctx, r.tgt.nonBlocking(r.setup, firedAction), nil, r.brief()/2)
			if err != nil {
				return nil, err
			}
			fr, err := r.toRecord(ctx, r.tgt.fire(r.setup, benchTrig), ruleID, r.brief()/2)
			if err != nil {
				return nil, err
			}
			vs = append(vs, variant{name: variantInvokeRec, f: inv, conc: 1}, variant{name: variantFireRec, f: fr, conc: 1, base: variantInvokeRec})
		}
		return vs, nil
	}
	return &load{name: "trigger-fire", measure: measure, rounds: newRounds}, nil
}

// checkRuleID fires the bench's trigger once and checks that its rule's
// activation has the id ruleID derives, as the trigger activation's logs
// record it (one JSON object per rule, OpenWhisk's format).
func (r *runner) checkRuleID(ctx context.Context, ruleID func(string) string) error {
	id, err := activationID(ctx, r.tgt.fire(r.setup, benchTrig))
	if err != nil {
		return err
	}
	if err := r.tgt.awaitRecord(ctx, r.setup, id); err != nil {
		return err
	}
	act, err := r.tgt.api.GetActivation(ctx, id)
	if err != nil {
		return err
	}
	var ids []string
	for _, l := range act.Logs {
		var line struct {
			ActivationID string `json:"activationId"`
		}
		if json.Unmarshal([]byte(l), &line) == nil {
			ids = append(ids, line.ActivationID)
		}
	}
	if want := ruleID(id); !slices.Contains(ids, want) {
		return fmt.Errorf("the trigger activation's logs name rule activations %q, not %s as trigger.RuleActivationID derives", ids, want)
	}
	return r.tgt.awaitRecord(ctx, r.setup, ruleID(id))
}

// accepts measures the 202s of req at concurrency c, as async-invoke
// does: the backlog of queued activations of action is worked off before
// and after, so that a measurement never competes with an earlier one's
// leftovers. CPU is not reported: the accepts leave work behind.
func (r *runner) accepts(ctx context.Context, c int, action string, req *request) (figures, error) {
	before, err := r.recorded(ctx, action)
	if err != nil {
		return figures{}, err
	}
	w := closedLoop(ctx, c, r.warmup(), req.do)
	if w.ops == 0 && w.errs > 0 {
		return figures{}, w.err
	}
	if before, err = r.waitRecorded(ctx, action, before+w.ops); err != nil {
		return figures{}, err
	}
	f := closedLoop(ctx, c, r.brief(), req.do)
	if f.ops == 0 && f.errs > 0 {
		return figures{}, f.err
	}
	if _, err := r.waitRecorded(ctx, action, before+f.ops); err != nil {
		return figures{}, err
	}
	f.cpu = 0
	return f, nil
}

// Variants of sequence.
const (
	variantComponent = "component alone"
	variantSeq1      = "sequence of 1"
	variantSeq5      = "sequence of 5"
	variantPerStep   = "per step: (p50 of 5 − p50 of 1)/4"
)

// prepareSequence creates a no-op Go reactor action and sequences of one
// and five of it. Every step runs the same warm function, so the steps
// differ from a single invoke only by what the sequence machinery adds.
func (r *runner) prepareSequence(ctx context.Context) (*load, error) {
	_, a, err := r.benchAction(ctx, "noop-go-reactor")
	if err != nil {
		return nil, err
	}
	step := actionPrefix + "step"
	if err := r.createAction(ctx, step, a); err != nil {
		return nil, err
	}
	ns, err := r.tgt.namespace(ctx)
	if err != nil {
		return nil, err
	}
	full := "/" + ns + "/" + step
	seq1, seq5 := actionPrefix+"seq-1", actionPrefix+"seq-5"
	if err := r.createAction(ctx, seq1, action{kind: gust.ExecSequence, components: []string{full}}); err != nil {
		return nil, err
	}
	if err := r.createAction(ctx, seq5, action{kind: gust.ExecSequence, components: slices.Repeat([]string{full}, 5)}); err != nil {
		return nil, err
	}
	c := newClient(1)
	cpu := r.tgt.inProcess()
	measure := func(ctx context.Context, _ int) ([]variant, error) {
		var vs []variant
		for _, m := range []struct {
			name, base, action string
		}{{variantComponent, "", step}, {variantSeq1, variantComponent, seq1}, {variantSeq5, variantComponent, seq5}} {
			vv, err := r.plainFor(r.tgt.blocking(c, m.action).do, cpu, r.brief())(ctx, 1)
			if err != nil {
				return nil, err
			}
			f := vv[0].f
			if f.ops == 0 {
				return nil, fmt.Errorf("%s: %w", m.name, f.err)
			}
			vs = append(vs, variant{name: m.name, f: f, conc: 1, base: m.base})
		}
		per := variant{name: variantPerStep, f: figures{p50: perStep(vs[1].f.p50, vs[2].f.p50, 5), ops: vs[2].f.ops}, conc: 1, base: variantComponent}
		if per.f.p50 == 0 {
			per.note = fmt.Sprintf("within the noise: p50 of 5 (%s) ≤ p50 of 1 (%s) in a round; measure longer", vs[2].f.p50, vs[1].f.p50)
		}
		return append(vs, per), nil
	}
	return &load{name: "sequence", measure: measure, once: true, rounds: newRounds}, nil
}

// perStep is the latency one more step adds to a sequence: the difference
// of the medians of sequences of n and of 1 steps, over n−1 (0 when not
// measured or within the noise, i.e. negative).
func perStep(one, n time.Duration, steps int) time.Duration {
	if one <= 0 || n <= one || steps < 2 {
		return 0
	}
	return (n - one) / time.Duration(steps-1)
}
