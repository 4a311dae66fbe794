package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/scheduler"
)

// Variants of placement.
const (
	variantSingle = "1 invoker (the bench's node)"
	variantLocal  = "2 invokers, home = the API's invoker"
	variantRemote = "2 invokers, home = the other (NATS request-reply)"
)

// preparePlacement prepares the measure of placement: a second node in
// this process with two invokers (app.Config.Invokers), and on it two
// no-op Go reactor actions, one whose home invoker (rendezvous hash,
// scheduler.Pick) is the API's own, run by a direct call, and one whose
// home is the other invoker, run over NATS request-reply. The bench's
// single-invoker node runs the same module, for the core's path.
func (r *runner) preparePlacement(ctx context.Context) (*load, error) {
	if !r.tgt.inProcess() {
		return nil, errors.New("starts a node with two invokers in this process: needs the bench's own node (not --apihost)")
	}
	_, a, err := r.benchAction(ctx, "noop-go-reactor")
	if err != nil {
		return nil, err
	}
	single := actionPrefix + "place-single"
	if err := r.createAction(ctx, single, a); err != nil {
		return nil, err
	}
	c := newClient(1)
	cpu := r.tgt.inProcess()
	var two *target
	var local, remote string
	measure := func(ctx context.Context, _ int) ([]variant, error) {
		// The second node starts with the first measurement, not before the
		// start-up scenarios, which would share the process's heap with it.
		if two == nil {
			var err error
			if two, local, remote, err = r.startPlacement(ctx, a); err != nil {
				return nil, unavailable{err}
			}
		}
		var vs []variant
		for _, m := range []struct {
			name, base string
			req        *request
		}{
			{variantSingle, "", r.tgt.blocking(c, single)},
			{variantLocal, variantSingle, two.blocking(c, local)},
			{variantRemote, variantLocal, two.blocking(c, remote)},
		} {
			vv, err := r.plainFor(m.req.do, cpu, r.brief())(ctx, 1)
			if err != nil {
				return nil, err
			}
			if vv[0].f.ops == 0 {
				return nil, fmt.Errorf("%s: %w", m.name, vv[0].f.err)
			}
			vs = append(vs, variant{name: m.name, f: vv[0].f, conc: 1, base: m.base})
		}
		return vs, nil
	}
	return &load{name: "placement", measure: measure, once: true, rounds: newRounds}, nil
}

// waitInvokers waits until the registry lists n live invokers.
func waitInvokers(ctx context.Context, reg *scheduler.Registry, n int) ([]scheduler.Heartbeat, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := reg.Live()
		if len(live) >= n {
			return live, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d invokers announced themselves within 10s", len(live), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// homedOn returns the first action name prefix+N whose home among live
// invokers is invoker id, as the scheduler picks for a wasm action of the
// bench's memory limit (128 MB) in namespace ns.
func homedOn(live []scheduler.Heartbeat, ns, prefix, id string) (string, error) {
	for i := range 1000 {
		name := actionPrefix + prefix + strconv.Itoa(i)
		key := gust.Path{Namespace: ns, Name: name}.String()
		if got, ok := scheduler.Pick(live, key, 128, "wasm"); ok && got == id {
			return name, nil
		}
	}
	return "", fmt.Errorf("no action name of 1000 tried has invoker %s as its home", id)
}

// invokedOn invokes action once, blocking, and returns the invoker that
// ran it (the activation's "invoker" annotation).
func invokedOn(ctx context.Context, t *target, name string) (string, error) {
	status, body, _, err := t.api.Invoke(ctx, name, nil, client.InvokeOpts{Blocking: true})
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("invoke %s: status %d: %s", name, status, bytes.TrimSpace(body))
	}
	if err != nil {
		return "", err
	}
	var act gust.Activation
	if err := json.Unmarshal(body, &act); err != nil {
		return "", err
	}
	var id string
	if raw, ok := act.Annotations.Get("invoker"); ok {
		_ = json.Unmarshal(raw, &id)
	}
	if id == "" {
		return "", fmt.Errorf("the activation of %s does not name its invoker", name)
	}
	return id, nil
}

// startPlacement starts the node with two invokers and creates on it the
// actions homed on each, checking that each runs where it should.
func (r *runner) startPlacement(ctx context.Context, a action) (two *target, local, remote string, err error) {
	r.prog.printf("placement: starting a node with two invokers")
	two, err = startNode(ctx, filepath.Join(r.cacheDir, "wazero"), func(c *app.Config) {
		c.Invokers, c.NodeName = 2, "bench-placement"
	})
	if err != nil {
		return nil, "", "", err
	}
	r.closers = append(r.closers, two.close)
	live, err := waitInvokers(ctx, two.node.Registry(), 2)
	if err != nil {
		return nil, "", "", err
	}
	ns := two.node.Guest.Namespace
	self, other := two.node.Invokers[0].ID, two.node.Invokers[1].ID
	local, err = homedOn(live, ns, "place-local-", self)
	if err != nil {
		return nil, "", "", err
	}
	remote, err = homedOn(live, ns, "place-remote-", other)
	if err != nil {
		return nil, "", "", err
	}
	for name, want := range map[string]string{local: self, remote: other} {
		if err := two.putAction(ctx, name, a); err != nil {
			return nil, "", "", err
		}
		ran, err := invokedOn(ctx, two, name)
		if err != nil {
			return nil, "", "", err
		}
		if ran != want {
			return nil, "", "", fmt.Errorf("%s ran on invoker %s, not on its home %s", name, ran, want)
		}
	}

	return two, local, remote, nil
}
