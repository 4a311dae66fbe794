package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// store measures the activation store directly (package store on an
// embedded NATS server of its own): the ingest rate up to each size, beside
// a bare JetStream async publish of the same records, and, with that many
// records retained, get by id and the newest-50 list, one at a time. Reads
// are compared with floor-nats at c=1: a get is one direct-get round trip.
func (r *runner) store(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "gust-bench-store")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	sizes := r.opt.storeSizes
	acts, err := store.OpenActivations(ctx, b.Conn, b.JS, store.ActivationsConfig{MaxMsgs: int64(sizes[len(sizes)-1]) + 1}, log)
	if err != nil {
		return err
	}
	defer acts.Close()
	acts.SetRecordNamer(sampleNames{})
	floor, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCHFLOOR", Subjects: []string{"floor.>"},
		Storage: jetstream.FileStorage, AllowDirect: true, Duplicates: 2 * time.Minute})
	if err != nil {
		return err
	}
	natsBase := &link{"floor-nats", "", 1}

	ids := make([]string, 0, sizes[len(sizes)-1])
	for _, size := range sizes {
		label := countLabel(size)
		n := size - len(ids)
		r.prog.printf("activation-store: ingest, %s", label)
		pub, err := publishFloor(ctx, b.JS, n)
		if err != nil {
			return err
		}
		if err := floor.Purge(ctx); err != nil {
			return err
		}
		cpu0, cpuOK := processCPU()
		start := time.Now()
		for i := range n {
			act := sampleActivation(len(ids))
			var durable chan error
			if i == n-1 {
				durable = make(chan error, 1) // the writer is in order: the last one acked means all are
			}
			if err := acts.Put(act, durable); err != nil {
				return err
			}
			ids = append(ids, act.ActivationID)
			if durable != nil {
				if err := <-durable; err != nil {
					return err
				}
			}
		}
		ingest := figures{ops: int64(n), tput: float64(n) / time.Since(start).Seconds()}
		if cpu1, _ := processCPU(); cpuOK {
			ingest.cpu = (cpu1 - cpu0) / time.Duration(n)
		}
		base := r.add(&series{scenario: "activation-store", variant: "publish floor, " + label, conc: 1, rounds: []figures{pub}})
		r.add(&series{scenario: "activation-store", variant: "ingest, " + label, conc: 1, rounds: []figures{ingest}, base: base})

		r.prog.printf("activation-store: get by id, %s", label)
		get := closedLoop(ctx, 1, r.opt.duration, func(ctx context.Context, _ int) error {
			_, err := acts.Get(ctx, "guest", ids[rand.IntN(len(ids))])
			return err
		})
		r.add(&series{scenario: "activation-store", variant: "get by id, " + label, conc: 1, rounds: []figures{get}, link: natsBase})

		r.prog.printf("activation-store: newest 50, %s", label)
		list := closedLoop(ctx, 1, r.opt.duration, func(ctx context.Context, _ int) error {
			l, err := acts.List(ctx, "guest", store.ListOptions{Limit: 50})
			if err == nil && len(l) != 50 {
				err = fmt.Errorf("listed %d, want 50", len(l))
			}
			return err
		})
		r.add(&series{scenario: "activation-store", variant: "newest 50, " + label, conc: 1, rounds: []figures{list}, link: natsBase})

		r.prog.printf("activation-store: newest 50 of one action, %s", label)
		listOne := closedLoop(ctx, 1, r.opt.duration, func(ctx context.Context, _ int) error {
			l, err := acts.List(ctx, "guest", store.ListOptions{Name: "action-3", Limit: 50})
			if err == nil && len(l) != 50 {
				err = fmt.Errorf("listed %d of action-3, want 50", len(l))
			}
			return err
		})
		r.add(&series{scenario: "activation-store", variant: "newest 50 of an action (10%), " + label, conc: 1, rounds: []figures{listOne}, link: natsBase})
		for _, f := range []figures{get, list, listOne} {
			if f.err != nil {
				return f.err
			}
		}
	}
	return nil
}

// publishFloor publishes n records' worth of bytes with JetStream's async
// publish, as the store's writer does, and waits for every ack.
func publishFloor(ctx context.Context, js jetstream.JetStream, n int) (figures, error) {
	data, err := json.Marshal(sampleActivation(0))
	if err != nil {
		return figures{}, err
	}
	cpu0, cpuOK := processCPU()
	start := time.Now()
	for i := range n {
		id := strconv.Itoa(i)
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: "floor." + id, Data: data}, jetstream.WithMsgID(id), jetstream.WithStallWait(5*time.Second)); err != nil {
			return figures{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return figures{}, ctx.Err()
	}
	f := figures{ops: int64(n), tput: float64(n) / time.Since(start).Seconds()}
	if cpu1, _ := processCPU(); cpuOK {
		f.cpu = (cpu1 - cpu0) / time.Duration(n)
	}
	return f, nil
}

// sampleNames tells the store the names of sampleActivation's records, as
// a node's entity cache does for its actions.
type sampleNames struct{}

func (sampleNames) RecordNames(ns string, tag uint16) []string {
	var out []string
	for i := range 10 {
		if name := "action-" + strconv.Itoa(i); gust.ActivationTag(name) == tag {
			out = append(out, name)
		}
	}
	return out
}

// sampleActivation is a typical record of a small wasm action, as the
// invoker builds it, about 500 bytes of JSON; records rotate over ten
// actions.
func sampleActivation(i int) *gust.Activation {
	now := time.Now()
	name := "action-" + strconv.Itoa(i%10)
	return &gust.Activation{
		Namespace: "guest", Name: name, Subject: "guest", ActivationID: gust.NewActivationIDFor(now, name),
		Start: now.UnixMilli(), End: now.UnixMilli(), Version: "0.0.1", Logs: []string{},
		Response: gust.Response{StatusCode: gust.StatusSuccess, Result: json.RawMessage(`{"greeting":"Hello, bench!"}`)},
		Annotations: gust.KeyValues{}.Set("limits", gust.DefaultActionLimits()).Set("path", "guest/"+name).
			Set("kind", "wasm").Set("timeout", false).Set("waitTime", 0).Set("start", "warm"),
	}
}

// countLabel writes 10000 as "10k" and 1000000 as "1M".
func countLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M records"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k records"
	}
	return strconv.Itoa(n) + " records"
}
