package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// async measures non-blocking invokes at concurrency c: the accept latency
// and rate (202 with the activation id, once the work queue has it), and
// the completion rate: invocations over the time from the first accept to
// the last record stored. The process CPU of the whole window is charged
// to the completed invocations.
func (r *runner) async(c *http.Client) func(ctx context.Context, conc int) ([]variant, error) {
	action := actionPrefix + "async"
	accept := r.tgt.nonBlocking(c, action)
	return func(ctx context.Context, conc int) ([]variant, error) {
		before, err := r.recorded(ctx, action)
		if err != nil {
			return nil, err
		}
		// The warm-up's backlog must be worked off before measuring.
		w := closedLoop(ctx, conc, r.warmup(), accept.do)
		if w.ops == 0 && w.errs > 0 {
			return nil, w.err
		}
		if before, err = r.waitRecorded(ctx, action, before+w.ops); err != nil {
			return nil, err
		}
		cpu0, cpuOK := processCPU()
		start := time.Now()
		f := closedLoop(ctx, conc, r.opt.duration, accept.do)
		if _, err := r.waitRecorded(ctx, action, before+f.ops); err != nil {
			return nil, err
		}
		elapsed := time.Since(start)
		cpu1, _ := processCPU()
		done := figures{ops: f.ops, tput: float64(f.ops) / elapsed.Seconds()}
		if cpuOK && r.tgt.inProcess() && f.ops > 0 {
			done.cpu = (cpu1 - cpu0) / time.Duration(f.ops)
		}
		f.cpu = 0 // the accept phase leaves work behind: see "completed"
		return []variant{{name: "accept", f: f}, {name: "completed", f: done}}, nil
	}
}

// recorded returns how many records of action the target has stored.
func (r *runner) recorded(ctx context.Context, action string) (int64, error) {
	n, err := r.tgt.api.CountActivations(ctx, action)
	return int64(n), err
}

// waitRecorded polls until at least n records of action are stored.
func (r *runner) waitRecorded(ctx context.Context, action string, n int64) (int64, error) {
	limit := max(time.Minute, 30*r.opt.duration)
	deadline := time.Now().Add(limit)
	for {
		got, err := r.recorded(ctx, action)
		if err != nil || got >= n {
			return got, err
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("only %d of %d activations of %s were recorded after %s", got, n, action, limit)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// acceptToRecord measures, one invocation at a time, the time from the 202
// of a non-blocking invoke to its record being readable by id.
func (r *runner) acceptToRecord(ctx context.Context) error {
	r.prog.printf("async-invoke: accept to record")
	f, err := r.toRecord(ctx, r.tgt.nonBlocking(r.setup, actionPrefix+"async"), nil, r.opt.duration)
	if err != nil {
		return err
	}
	r.add(&series{scenario: "async-invoke", variant: "accept→record", conc: 1, rounds: []figures{f},
		link: &link{"floor-http", "", 1}})
	return nil
}

// toRecord measures, one at a time for d and at least 5 times, the time
// from the 202 of accept to the record it started being readable by id.
// record maps the id of the 202 to the id of the record to wait for (nil:
// the same). The record is polled back to back, so the figure is late by
// up to one GET.
func (r *runner) toRecord(ctx context.Context, accept *request, record func(id string) string, d time.Duration) (figures, error) {
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d || len(lat) < 5 {
		id, err := activationID(ctx, accept)
		if err != nil {
			return figures{}, err
		}
		accepted := time.Now()
		if record != nil {
			id = record(id)
		}
		if err := r.tgt.awaitRecord(ctx, r.setup, id); err != nil {
			return figures{}, err
		}
		lat = append(lat, time.Since(accepted))
	}
	return summarize(lat, 0), nil
}
