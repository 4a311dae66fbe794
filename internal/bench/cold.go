package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/wasm"
)

// Variants of cold-wasm.
const (
	variantInstanceC  = "fresh instance, C noop (sandbox)"
	variantInstanceGo = "first call, Go reactor (sandbox)"
	variantFirstC     = "first invoke, C (REST)"
	variantFirstGo    = "first invoke, Go reactor (REST)"
)

// cold measures the fresh-instance path: in the wasm sandbox itself (a
// whole call of the C command, which gets a fresh instance every time, and
// the first call of a new Go reactor function, which instantiates and
// initialises the Go runtime), and through the REST API (the first invoke
// of an action just created). Each REST iteration creates an action with a
// distinct timeout, so the invoker prepares a new function for it and no
// instance is left from an earlier one.
func (r *runner) cold(ctx context.Context) error {
	execBase := &link{"floor-exec", "/bin/true", 1}
	httpBase := &link{"floor-http", "", 1}
	b, err := wasm.New(wasm.Config{CacheDir: filepath.Join(r.cacheDir, "wazero"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	spec := func(code []byte, i int) sandbox.Spec {
		return sandbox.Spec{Kind: wasm.Kind, Code: code, Limits: sandbox.Limits{
			MemoryMB: 256, Timeout: time.Minute + time.Duration(i)*time.Millisecond, LogBytes: 10 << 20, ResultBytes: 1 << 20}}
	}
	call := sandbox.Call{Params: invokeBody, Env: owEnv()}
	invoke := func(ctx context.Context, fn sandbox.Function) (*sandbox.Result, error) {
		res, err := fn.Invoke(ctx, call)
		if err == nil && res.Status != gust.StatusSuccess {
			err = fmt.Errorf("status %s: %s", res.Status, res.Result)
		}
		return res, err
	}

	if code, err := r.fx.get(ctx, noopC); err != nil {
		r.markUnavailable("cold-wasm", variantInstanceC+": "+err.Error())
	} else {
		r.prog.printf("cold-wasm: %s", variantInstanceC)
		fn, err := b.Prepare(ctx, spec(code, 0))
		if err != nil {
			return err
		}
		one := func(ctx context.Context, _ int) error { _, err := invoke(ctx, fn); return err }
		closedLoop(ctx, 1, r.warmup(), one)
		f := closedLoop(ctx, 1, r.opt.duration, one)
		_ = fn.Close(ctx)
		if f.err != nil {
			return f.err
		}
		r.add(&series{scenario: "cold-wasm", variant: variantInstanceC, conc: 1, rounds: []figures{f}, link: execBase})
		if err := r.firstInvokes(ctx, "cold-wasm", variantFirstC, wasmAction(code), httpBase); err != nil {
			return err
		}
	}

	if code, err := r.fx.get(ctx, noopGo); err != nil {
		r.markUnavailable("cold-wasm", variantInstanceGo+": "+err.Error())
	} else {
		r.prog.printf("cold-wasm: %s", variantInstanceGo)
		var lat []time.Duration
		start := time.Now()
		for i := 0; i < 100 && (i < 5 || time.Since(start) < r.opt.duration); i++ {
			fn, err := b.Prepare(ctx, spec(code, i+1))
			if err != nil {
				return err
			}
			t0 := time.Now()
			res, err := invoke(ctx, fn)
			d := time.Since(t0)
			_ = fn.Close(ctx)
			if err != nil {
				return err
			}
			if res.Start != sandbox.StartCold {
				return fmt.Errorf("%s: the instance was %s, not cold", variantInstanceGo, res.Start)
			}
			lat = append(lat, d)
		}
		r.add(&series{scenario: "cold-wasm", variant: variantInstanceGo, conc: 1, rounds: []figures{summarize(lat, 0)}, link: execBase})
		if err := r.firstInvokes(ctx, "cold-wasm", variantFirstGo, wasmAction(code), httpBase); err != nil {
			return err
		}
	}
	return nil
}

// firstInvokes measures the first blocking invoke of freshly created
// actions through the REST API; each is deleted after its invoke.
func (r *runner) firstInvokes(ctx context.Context, scenario, variant string, a action, base *link) error {
	r.prog.printf("%s: %s", scenario, variant)
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < 20 && (i < 5 || time.Since(start) < r.opt.duration); i++ {
		name := actionPrefix + "cold-" + strconv.Itoa(i)
		a.timeoutMS = 60_000 - 1 - i
		if err := r.tgt.putAction(ctx, name, a); err != nil {
			return err
		}
		t0 := time.Now()
		err := r.tgt.blocking(r.setup, name).do(ctx, 0)
		d := time.Since(t0)
		if derr := r.tgt.api.DeleteAction(ctx, name); err == nil {
			err = derr
		}
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	r.add(&series{scenario: scenario, variant: variant, conc: 1, rounds: []figures{summarize(lat, 0)}, link: base})
	return nil
}

// coldProcess measures the first invoke of new python:3 and nodejs:20
// actions through the REST API, beside the fork+exec of the same
// interpreter (floor-exec). The invoker serves it from a stem cell when one
// is ready, else from a new sandbox: each call's start annotation says
// which, and each kind is reported both ways. The stem cells refill in the
// background, so every other call waits long enough for one.
func (r *runner) coldProcess(ctx context.Context) {
	for _, p := range []struct{ kind, code, floor string }{
		{"python:3", noopPython, "python3 -c pass"},
		{"nodejs:20", noopNode, "node -e 0"},
	} {
		r.prog.printf("cold-process: %s", p.kind)
		lat := map[string][]time.Duration{}
		start := time.Now()
		for i := 0; i < 24 && (i < 8 || time.Since(start) < 2*r.opt.duration); i++ {
			name := actionPrefix + "cold-" + strconv.Itoa(i)
			a := action{kind: p.kind, code: p.code, timeoutMS: 60_000 - 1 - i}
			if err := r.tgt.putAction(ctx, name, a); err != nil {
				r.markUnavailable("cold-process", p.kind+": "+err.Error())
				break
			}
			var body bytes.Buffer
			t0 := time.Now()
			_, err := r.tgt.blockingActivation(r.setup, name).send(ctx, &body)
			d := time.Since(t0)
			var act struct {
				Annotations gust.KeyValues `json:"annotations"`
			}
			if err == nil {
				err = json.Unmarshal(body.Bytes(), &act)
			} else if body.Len() > 0 {
				err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(body.Bytes()))
			}
			if derr := r.tgt.api.DeleteAction(ctx, name); err == nil {
				err = derr
			}
			if err != nil {
				r.markUnavailable("cold-process", p.kind+": "+err.Error())
				break
			}
			how := "new sandbox"
			if raw, ok := act.Annotations.Get("start"); ok && string(raw) == `"prewarmed"` {
				how = "stem cell"
			}
			lat[how] = append(lat[how], d)
			if i%2 == 1 {
				time.Sleep(300 * time.Millisecond) // a stem cell refills
			}
		}
		for _, how := range []string{"stem cell", "new sandbox"} {
			if len(lat[how]) > 0 {
				r.add(&series{scenario: "cold-process", variant: "first invoke, " + p.kind + ", " + how + " (REST)", conc: 1,
					rounds: []figures{summarize(lat[how], 0)}, link: &link{"floor-exec", p.floor, 1}})
			}
		}
	}
}

// owEnv is the __OW_* environment the invoker hands every call.
func owEnv() map[string]string {
	id := gust.NewActivationID(time.Now())
	return map[string]string{
		"__OW_NAMESPACE": "guest", "__OW_ACTION_NAME": "/guest/" + actionPrefix + "cold",
		"__OW_ACTION_VERSION": "0.0.1", "__OW_ACTIVATION_ID": id, "__OW_TRANSACTION_ID": id,
		"__OW_DEADLINE": strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10),
	}
}
