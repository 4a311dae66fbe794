package bench

import (
	"context"
	"errors"
	"sync"
	"time"
)

// burstSize is the burst of issue 4: a thousand concurrent invocations.
const burstSize = 1000

// Variants of async-burst.
const (
	variantBurstFloor    = "floor-http, 1000 at once"
	variantBurstAccept   = "accept, 1000 at once"
	variantBurstDone     = "completed"
	variantBurstToRecord = "accept→record"
)

// burstResult is what a burst measured: each request's latency and end.
type burstResult struct {
	start time.Time
	lat   []time.Duration // of the requests that succeeded
	ends  []time.Time     // by request; zero for a failed one
	errs  int64
	err   error // the first
}

// burst starts n goroutines, each sending one request (fn(ctx, i)), and
// releases them at once when all are ready.
func burst(ctx context.Context, n int, fn func(ctx context.Context, i int) error) burstResult {
	res := burstResult{lat: make([]time.Duration, n), ends: make([]time.Time, n)}
	var ready, done sync.WaitGroup
	var mu sync.Mutex
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			t0 := time.Now()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if res.errs++; res.err == nil {
					res.err = err
				}
				mu.Unlock()
				return
			}
			res.ends[i] = time.Now()
			res.lat[i] = res.ends[i].Sub(t0)
		}()
	}
	ready.Wait()
	res.start = time.Now()
	close(gate)
	done.Wait()
	return res
}

// figures summarises a burst: latencies of the requests that succeeded,
// and the rate of the whole burst, from the release to the last answer.
func (b burstResult) figures() figures {
	var lat []time.Duration
	var last time.Time
	for i, e := range b.ends {
		if !e.IsZero() {
			lat = append(lat, b.lat[i])
			if e.After(last) {
				last = e
			}
		}
	}
	f := summarize(lat, last.Sub(b.start))
	f.errs, f.err = b.errs, b.err
	return f
}

// acceptToRecords returns the time from each accepted invocation's 202 to
// its record, and the time of the last record. A record seen before its
// 202 was read (the answer travelled slower than the work) counts as 0.
func acceptToRecords(accepted map[string]time.Time, seen map[string]time.Time) (lat []time.Duration, last time.Time) {
	for id, a := range accepted {
		s, ok := seen[id]
		if !ok {
			continue
		}
		lat = append(lat, max(s.Sub(a), 0))
		if s.After(last) {
			last = s
		}
	}
	return lat, last
}

// prepareBurst creates the no-op Go reactor action of async-burst and the
// watch that times its records.
func (r *runner) prepareBurst(ctx context.Context) (*load, error) {
	if !r.tgt.inProcess() {
		return nil, errors.New("times each record on the node's NATS server: needs the bench's own node (not --apihost)")
	}
	_, a, err := r.benchAction(ctx, "noop-go-reactor")
	if err != nil {
		return nil, err
	}
	name := actionPrefix + "burst"
	if err := r.createAction(ctx, name, a); err != nil {
		return nil, err
	}
	watch, err := watchRecords(r.tgt.node.Broker, r.tgt.node.Guest.Namespace, name, 2*burstSize)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, watch.close)
	floor := r.floorHTTP.request(newClient(burstSize), r.tgt.auth)
	accept := r.tgt.nonBlocking(newClient(burstSize), name)
	warm := false
	measure := func(ctx context.Context, _ int) ([]variant, error) {
		if !warm {
			// Opens the connections and fills the instance pool.
			if _, _, err := r.burstOnce(ctx, accept, watch); err != nil {
				return nil, err
			}
			if f := burst(ctx, burstSize, floor.do).figures(); f.ops == 0 {
				return nil, f.err
			}
			warm = true
		}
		cpu0, cpuOK := processCPU()
		fl := burst(ctx, burstSize, floor.do).figures()
		if fl.ops == 0 {
			return nil, fl.err
		}
		cpu1, _ := processCPU()
		if cpuOK {
			fl.cpu = (cpu1 - cpu0) / time.Duration(fl.ops)
		}
		acc, toRec, err := r.burstOnce(ctx, accept, watch)
		if err != nil {
			return nil, err
		}
		cpu2, _ := processCPU()
		// The whole burst's CPU, to its last record, per invocation.
		done := figures{ops: toRec.ops, tput: toRec.tput}
		if cpuOK && toRec.ops > 0 {
			done.cpu = (cpu2 - cpu1) / time.Duration(toRec.ops)
		}
		toRec.tput = 0 // it is the completion rate: on its own row
		return []variant{
			{name: variantBurstFloor, f: fl, conc: burstSize, own: true},
			{name: variantBurstAccept, f: acc, conc: burstSize, base: variantBurstFloor},
			{name: variantBurstDone, f: done, conc: burstSize, base: variantBurstFloor},
			{name: variantBurstToRecord, f: toRec, conc: burstSize, base: variantBurstFloor},
		}, nil
	}
	return &load{name: "async-burst", measure: measure, once: true, rounds: newRounds}, nil
}

// burstOnce sends a burst of non-blocking invokes and waits for their
// records. It returns the accepts' figures, and accept→record latencies
// with, as throughput, the invocations completed per second from the
// release of the burst to the last record.
func (r *runner) burstOnce(ctx context.Context, accept *request, watch *recordWatch) (acc, toRec figures, err error) {
	watch.drain()
	ids := make([]string, burstSize)
	at := make([]time.Time, burstSize)
	b := burst(ctx, burstSize, func(ctx context.Context, i int) error {
		id, err := activationID(ctx, accept)
		ids[i], at[i] = id, time.Now()
		return err
	})
	acc = b.figures()
	want := map[string]bool{}
	accepted := map[string]time.Time{}
	for i, id := range ids {
		if id != "" && !b.ends[i].IsZero() {
			want[id], accepted[id] = true, at[i]
		}
	}
	seen, err := watch.collect(ctx, want, max(time.Minute, 30*r.opt.duration))
	if err != nil {
		return acc, toRec, err
	}
	lat, last := acceptToRecords(accepted, seen)
	toRec = summarize(lat, last.Sub(b.start))
	return acc, toRec, nil
}
