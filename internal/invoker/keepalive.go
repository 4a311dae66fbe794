package invoker

import (
	"context"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Scale to zero: a prepared function holds its warm instances (reactor
// instances, worker processes) until the keep-alive policy says it has
// been idle long enough; then it is closed and its memory freed. With a
// pre-warm window (the hybrid policy) it is closed at once after a call and
// prepared again shortly before the next call is expected.

// prewarmPlan is a function closed until its pre-warm time.
type prewarmPlan struct {
	e         *entry // the closed entry: action, digest, code loader
	at, until time.Time
}

// policyKey names an action for the keep-alive policy: its history is the
// action's, whatever version or limits it runs with.
func policyKey(a *gust.Action) string { return a.Path().String() }

func (inv *Invoker) sweeper(every time.Duration) {
	defer inv.swept.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-inv.stop:
			return
		case now := <-t.C:
			inv.sweep(now)
		}
	}
}

// sweep closes functions whose keep-alive ran out, and idle instances of
// the others kept alive as long (scale down after a burst), and prepares
// the functions whose pre-warm time came.
func (inv *Invoker) sweep(now time.Time) {
	var unload []*entry
	var due []*prewarmPlan
	type trim struct {
		p    sandbox.InstancePool
		key  string
		busy int
	}
	var trims []trim
	inv.mu.Lock()
	for el := inv.lru.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*entry)
		select {
		case <-e.ready:
		default:
			el = next
			continue // still being prepared
		}
		if p, ok := e.fn.(sandbox.InstancePool); ok && e.instances > 0 {
			trims = append(trims, trim{p, policyKey(e.action), e.busy})
		}
		if e.busy == 0 && e.fn != nil {
			d := e.decision
			switch {
			case d.PreWarm > 0 && now.Before(e.lastEnd.Add(d.PreWarm)):
				inv.plans[e.key] = &prewarmPlan{e: e, at: e.lastEnd.Add(d.PreWarm), until: e.lastEnd.Add(d.PreWarm + d.KeepAlive)}
				unload = append(unload, e)
			case !now.Before(e.lastEnd.Add(d.PreWarm + d.KeepAlive)):
				unload = append(unload, e)
			}
		}
		el = next
	}
	for _, e := range unload {
		if el, ok := inv.funcs[e.key]; ok && el.Value.(*entry) == e {
			inv.lru.Remove(el)
			delete(inv.funcs, e.key)
		}
	}
	for key, p := range inv.plans {
		if _, loaded := inv.funcs[key]; loaded || !now.Before(p.until) {
			delete(inv.plans, key) // a call came first, or the window passed
			continue
		}
		if !now.Before(p.at) {
			delete(inv.plans, key)
			due = append(due, p)
		}
	}
	inv.mu.Unlock()

	for _, e := range unload {
		inv.m.unloads.Inc(inv.id)
		_ = e.fn.Close(context.Background())
	}
	for _, t := range trims {
		// Each idle instance by its rank: the busy ones, then the idle ones
		// from the most recently used (keepalive.MaxRank).
		n := t.p.Trim(func(pos int, idleSince time.Time) bool {
			d := inv.policy.Decide(t.key, t.busy+pos)
			return now.Sub(idleSince) >= d.PreWarm+d.KeepAlive
		}, 0)
		if n > 0 {
			inv.m.trims.Add(float64(n), inv.id, "keep-alive")
		}
	}
	for _, p := range due {
		inv.prewarm(p)
	}
}

// prewarm prepares a function again before its next expected call, with
// one instance ready when the backend can make one ahead of time.
func (inv *Invoker) prewarm(p *prewarmPlan) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := inv.function(ctx, p.e.action, p.e.digest, p.e.code, false)
	if err != nil {
		inv.log.Warn("pre-warm failed", "action", p.e.action.Path().String(), "err", err)
		return
	}
	inv.mu.Lock()
	// Keep it until the end of the predicted window.
	e.lastEnd = p.at
	e.decision.PreWarm, e.decision.KeepAlive = 0, p.until.Sub(p.at)
	inv.mu.Unlock()
	if pw, ok := e.fn.(sandbox.Prewarmer); ok {
		if err := pw.Prewarm(ctx); err != nil {
			inv.log.Warn("pre-warm of an instance failed", "action", p.e.action.Path().String(), "err", err)
			return
		}
	}
	inv.m.prewarms.Inc(inv.id)
}
