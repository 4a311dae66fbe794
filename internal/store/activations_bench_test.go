package store

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
)

// benchActivation is a record as the invoker builds it for a small wasm
// action: about 500 bytes of JSON.
func benchActivation(now time.Time) *gust.Activation {
	return &gust.Activation{
		Namespace: "guest", Name: "hello", Subject: "guest", ActivationID: gust.NewActivationID(now),
		Start: now.UnixMilli(), End: now.UnixMilli(), Version: "0.0.1", Logs: []string{},
		Response: gust.Response{StatusCode: gust.StatusSuccess, Result: json.RawMessage(`{"greeting":"Hello, bench!"}`)},
		Annotations: gust.KeyValues{}.Set("limits", gust.DefaultActionLimits()).Set("path", "guest/hello").
			Set("kind", "wasm").Set("timeout", false).Set("waitTime", 0).Set("start", "warm"),
	}
}

// BenchmarkActivationEncode measures the JSON encoding of a record, which
// Put does on the caller's goroutine, beside a baseline: encoding/json of
// the same fields in a plain struct.
func BenchmarkActivationEncode(b *testing.B) {
	act := benchActivation(time.Now())
	b.Run("record", func(b *testing.B) {
		// As Put encodes it: the hand-written encoder into a fresh buffer.
		b.ReportAllocs()
		var n int
		for b.Loop() {
			data, err := act.AppendJSON(make([]byte, 0, 768))
			if err != nil {
				b.Fatal(err)
			}
			n = len(data)
		}
		b.ReportMetric(float64(n), "bytes/record")
	})
	type plain struct {
		Namespace, Name, Subject, ActivationID string
		Start, End, Duration                   int64
		Response                               struct{ Status, Result string }
		Logs                                   []string
		Version                                string
		Publish                                bool
		Annotations                            map[string]any
	}
	p := plain{Namespace: act.Namespace, Name: act.Name, Subject: act.Subject, ActivationID: act.ActivationID,
		Start: act.Start, End: act.End, Logs: act.Logs, Version: act.Version,
		Annotations: map[string]any{"limits": gust.DefaultActionLimits(), "path": "guest/hello", "kind": "wasm", "timeout": false, "waitTime": 0, "start": "warm"}}
	p.Response.Status, p.Response.Result = "success", `{"greeting":"Hello, bench!"}`
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkActivationPut measures storing records through Put (encode,
// the pending map, the batching writer and JetStream's acks, waiting for
// the last one), beside a baseline of JetStream async publishes of the
// same bytes on a stream of the same kind.
func BenchmarkActivationPut(b *testing.B) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	br, err := broker.Start(ctx, broker.Config{DataDir: b.TempDir(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	acts, err := OpenActivations(ctx, br.Conn, br.JS, ActivationsConfig{}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(acts.Close)
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		act := benchActivation(time.Now())
		for b.Loop() {
			act.ActivationID = gust.NewActivationID(time.Now())
			if err := acts.Put(act, nil); err != nil {
				b.Fatal(err)
			}
		}
		durable := make(chan error, 1)
		act.ActivationID = gust.NewActivationID(time.Now())
		if err := acts.Put(act, durable); err != nil {
			b.Fatal(err)
		}
		if err := <-durable; err != nil {
			b.Fatal(err)
		}
	})
	if _, err := br.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOOR", Subjects: []string{"floor.>"},
		Storage: jetstream.FileStorage, AllowDirect: true, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(benchActivation(time.Now()))
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			id := strconv.Itoa(i)
			if _, err := br.JS.PublishMsgAsync(&nats.Msg{Subject: "floor." + id, Data: data}, jetstream.WithMsgID(id),
				jetstream.WithStallWait(5*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
		<-br.JS.PublishAsyncComplete()
	})
}
