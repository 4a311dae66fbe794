package trigger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"
	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/invoker"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
	"github.com/gust-faas/gust/internal/store"
	"github.com/gust-faas/gust/internal/trigger"
)

// Latency benchmarks of the event paths. Each reports p50 and p99 of one
// event at a time (b.N events), next to a baseline measured in the same
// run. Run with e.g. -bench 'Event|Fire|Sequence' -benchtime 300x.

// latencies collects one duration per event and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B, name string) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	p := func(q float64) float64 { return float64(s[int(q*float64(len(s)-1))].Microseconds()) }
	b.ReportMetric(p(0.5), name+"-p50-µs")
	b.ReportMetric(p(0.99), name+"-p99-µs")
}

// benchNode is a node with a warm wasm reactor (goreactor) run by a rule of
// trigger "ev", and a subscription to the records of that action as the
// activation store receives them.
type benchNode struct {
	*gusttest.Node
	records chan []byte
}

func startBenchNode(b *testing.B, opts ...gusttest.Option) *benchNode {
	b.Helper()
	n := gusttest.Start(b, opts...)
	wsk, err := whisk.NewClient(&http.Client{Timeout: time.Minute}, &whisk.Config{Host: n.URL, AuthToken: n.Auth, Namespace: "_", Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	code := base64.StdEncoding.EncodeToString(wasmtest.Build(b, "goreactor"))
	if _, _, err := wsk.Actions.Insert(&whisk.Action{Name: "g", Exec: &whisk.Exec{Kind: "wasm", Code: &code}}, false); err != nil {
		b.Fatal(err)
	}
	if _, _, err := wsk.Triggers.Insert(&whisk.Trigger{Name: "ev"}, false); err != nil {
		b.Fatal(err)
	}
	if _, _, err := wsk.Rules.Insert(&whisk.Rule{Name: "r", Trigger: "ev", Action: "g"}, false); err != nil {
		b.Fatal(err)
	}
	bn := &benchNode{Node: n, records: make(chan []byte, 1024)}
	// Records reach the activation stream on subjects act.<ns>.<action>.<id>;
	// a core subscription sees each as the stream stores it.
	sub, err := n.Broker.Conn.Subscribe("act.guest.g.*", func(m *nats.Msg) { bn.records <- m.Data })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := n.Broker.Conn.Flush(); err != nil { // the subscription is in place before any record
		b.Fatal(err)
	}
	// Warm the reactor.
	if _, _, err := wsk.Actions.Invoke("g", map[string]any{"name": "warm"}, true, true); err != nil {
		b.Fatal(err)
	}
	bn.await(b, "warm")
	return bn
}

// await waits for the record of the action run with name.
func (n *benchNode) await(b *testing.B, name string) {
	b.Helper()
	want := []byte("Hello, " + name + "!")
	timeout := time.After(10 * time.Second)
	for {
		select {
		case rec := <-n.records:
			if bytes.Contains(rec, want) {
				return
			}
		case <-timeout:
			b.Fatalf("no record for %s within 10s", name)
		}
	}
}

// BenchmarkEventMQTT measures an MQTT publish (paho, QoS 0) to a device
// topic → mqtt feed → trigger → rule → warm wasm reactor → its record in
// the activation store. Baseline: the embedded server's own MQTT publish →
// NATS subscriber latency.
func BenchmarkEventMQTT(b *testing.B) {
	n := startBenchNode(b, withMQTT)
	n.feedCreate(b, "mqtt/subscribe", map[string]any{"topic": "guest/bench/+"})
	dev, err := mqttClient(b, n.Broker.MQTTAddr(), n.Auth, "bench-device")
	if err != nil {
		b.Fatal(err)
	}
	base := make(chan time.Time, 16)
	sub, err := n.Broker.Conn.Subscribe("guest.base.x", func(*nats.Msg) { base <- time.Now() })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := n.Broker.Conn.Flush(); err != nil {
		b.Fatal(err)
	}

	var event, baseline latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		dev.Publish("guest/base/x", 0, false, `{"name":"base"}`)
		select {
		case got := <-base:
			baseline = append(baseline, got.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("the baseline subscriber got nothing in 10s")
		}

		name := fmt.Sprintf("m%d", i)
		t0 = time.Now()
		dev.Publish("guest/bench/x", 0, false, `{"name":"`+name+`"}`)
		n.await(b, name)
		event = append(event, time.Since(t0))
	}
	b.StopTimer()
	event.report(b, "mqtt-to-record")
	baseline.report(b, "nats-mqtt-to-sub")
}

// BenchmarkEventHTTPFire measures POST .../triggers/ev (202) → rule → warm
// reactor → record, beside a non-blocking invoke of the same action.
func BenchmarkEventHTTPFire(b *testing.B) {
	n := startBenchNode(b)
	post := func(path, name string) {
		req, _ := http.NewRequest("POST", n.URL+"/api/v1/namespaces/_/"+path, strings.NewReader(`{"name":"`+name+`"}`))
		uuid, key, _ := strings.Cut(n.Auth, ":")
		req.SetBasicAuth(uuid, key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	var fire, invoke latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("h%d", i)
		t0 := time.Now()
		post("triggers/ev", name)
		n.await(b, name)
		fire = append(fire, time.Since(t0))

		name = fmt.Sprintf("i%d", i)
		t0 = time.Now()
		post("actions/g", name)
		n.await(b, name)
		invoke = append(invoke, time.Since(t0))
	}
	b.StopTimer()
	fire.report(b, "fire-to-record")
	invoke.report(b, "async-invoke-to-record")
}

func (n *benchNode) feedCreate(b *testing.B, feed string, p map[string]any) {
	b.Helper()
	sys, err := whisk.NewClient(&http.Client{Timeout: time.Minute}, &whisk.Config{Host: n.URL, AuthToken: n.Auth, Namespace: "whisk.system", Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	p["authKey"], p["lifecycleEvent"], p["triggerName"] = n.Auth, "CREATE", "/_/ev"
	if _, _, err := sys.Actions.Invoke(feed, p, true, true); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSequenceStep measures a blocking sequence of 5 warm reactors
// against one blocking invoke of the same reactor over HTTP; each further
// step costs (sequence − single) / 4: the reactor's run plus the
// platform's per-step work (BenchmarkSequenceOverhead has the latter alone).
func BenchmarkSequenceStep(b *testing.B) {
	n := startBenchNode(b)
	put := func(name string, body any) {
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", n.URL+"/api/v1/namespaces/_/actions/"+name, bytes.NewReader(js))
		uuid, key, _ := strings.Cut(n.Auth, ":")
		req.SetBasicAuth(uuid, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("PUT %s: %v %v", name, resp, err)
		}
		resp.Body.Close()
	}
	put("s5", map[string]any{"exec": map[string]any{"kind": "sequence", "components": []string{"g", "g", "g", "g", "g"}}})
	call := func(name string) time.Duration {
		req, _ := http.NewRequest("POST", n.URL+"/api/v1/namespaces/_/actions/"+name+"?blocking=true&result=true", strings.NewReader(`{"name":"x"}`))
		uuid, key, _ := strings.Cut(n.Auth, ":")
		req.SetBasicAuth(uuid, key)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("invoke %s: %v %v", name, resp, err)
		}
		resp.Body.Close()
		return time.Since(t0)
	}
	var seq, single latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		single = append(single, call("g"))
		seq = append(seq, call("s5"))
	}
	b.StopTimer()
	single.report(b, "single")
	seq.report(b, "sequence5")
	slices.Sort(single)
	slices.Sort(seq)
	step := (seq[len(seq)/2] - single[len(single)/2]) / 4
	b.ReportMetric(float64(step.Microseconds()), "per-step-µs")
}

// stampRunner stands in for the invoker: it notes when each activation
// starts, so the platform's own path is measured without a sandbox.
type stampRunner struct{ starts chan time.Time }

func (r *stampRunner) Run(_ context.Context, job *invoker.Job) *gust.Activation {
	now := time.Now()
	select {
	case r.starts <- now:
	default:
	}
	return &gust.Activation{Namespace: job.Namespace, Name: job.Action.Name, Subject: job.Subject, ActivationID: job.ActivationID,
		Cause: job.Cause, Start: now.UnixMilli(), End: now.UnixMilli(), Logs: []string{}, Version: job.Action.Version,
		Response: gust.Response{Result: json.RawMessage(`{}`)}, Annotations: gust.KeyValues{}}
}

// platform is the activation service, the firer and the stores on an
// embedded NATS server, with stampRunner as the invoker: the platform's own
// path, without HTTP or a sandbox.
type platform struct {
	svc    *activation.Service
	firer  *trigger.Firer
	runner *stampRunner
	guest  *store.Identity
	put    func(p gust.Path, typ string, doc any)
}

func startPlatform(b *testing.B) *platform {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	br, err := broker.Start(ctx, broker.Config{DataDir: b.TempDir(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	ents, err := store.OpenEntities(ctx, br.JS, 1, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ents.Close)
	keys, err := store.OpenKeys(ctx, br.JS, 1, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(keys.Close)
	acts, err := store.OpenActivations(ctx, br.Conn, br.JS, store.ActivationsConfig{}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(acts.Close)
	queue, err := activation.OpenQueue(ctx, br.JS, 1)
	if err != nil {
		b.Fatal(err)
	}
	p := &platform{runner: &stampRunner{starts: make(chan time.Time, 1)}}
	if p.guest, err = keys.Ensure(ctx, "guest", ""); err != nil {
		b.Fatal(err)
	}
	p.put = func(path gust.Path, typ string, doc any) {
		raw, _ := json.Marshal(doc)
		if _, err := ents.Put(ctx, path, &store.Record{Type: typ, Doc: raw}, 0); err != nil {
			b.Fatal(err)
		}
	}
	lim := gusttest.TestLimits()
	p.svc = activation.New(activation.Config{Entities: ents, Keys: keys, Records: acts, Runner: p.runner, Queue: queue, Limits: lim, Logger: log})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.svc.Work(wctx, acts, 4) }()
	b.Cleanup(func() { stop(); <-done; _ = p.svc.Wait(ctx) })
	p.firer = trigger.NewFirer(trigger.FirerConfig{Entities: ents, Invoker: p.svc, Records: acts, Limits: lim, Logger: log})
	return p
}

// BenchmarkFireToRuleStart measures Fire (in-process) → the rule action
// starting on a worker of the durable queue, beside a non-blocking invoke
// of the same action → its start: the difference is what firing adds.
func BenchmarkFireToRuleStart(b *testing.B) {
	ctx := context.Background()
	p := startPlatform(b)
	action := gust.Path{Namespace: "guest", Name: "a"}
	p.put(action, store.TypeAction, gust.Action{Namespace: "guest", Name: "a", Exec: gust.Exec{Kind: "wasm"}, Limits: gust.DefaultActionLimits(), Version: "0.0.1"})
	p.put(gust.Path{Namespace: "guest", Name: "t"}, store.TypeTrigger, gust.Trigger{Namespace: "guest", Name: "t", Version: "0.0.1",
		Rules: map[string]gust.ReducedRule{"guest/r": {Action: gust.RefOf(action), Status: gust.RuleActive}}})

	var fire, invoke latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := p.firer.Fire(ctx, trigger.Fire{Caller: p.guest, Trigger: gust.Path{Namespace: "guest", Name: "t"}, Payload: json.RawMessage(`{"i":1}`)}); err != nil {
			b.Fatal(err)
		}
		fire = append(fire, (<-p.runner.starts).Sub(t0))

		t0 = time.Now()
		if _, err := p.svc.Invoke(ctx, activation.Request{Caller: p.guest, Path: action, Params: json.RawMessage(`{"i":1}`)}); err != nil {
			b.Fatal(err)
		}
		invoke = append(invoke, (<-p.runner.starts).Sub(t0))
	}
	b.StopTimer()
	fire.report(b, "fire-to-start")
	invoke.report(b, "async-invoke-to-start")
}

// BenchmarkSequenceOverhead measures the platform's work per sequence step
// (resolve, merge, admit, record) with a runner that does nothing: a
// blocking sequence of 10 steps against one of 1; per step = (T10 − T1) / 9.
func BenchmarkSequenceOverhead(b *testing.B) {
	ctx := context.Background()
	p := startPlatform(b)
	p.put(gust.Path{Namespace: "guest", Name: "a"}, store.TypeAction, gust.Action{Namespace: "guest", Name: "a", Exec: gust.Exec{Kind: "wasm"}, Limits: gust.DefaultActionLimits(), Version: "0.0.1"})
	for _, n := range []int{1, 10} {
		comps := slices.Repeat([]string{"/guest/a"}, n)
		p.put(gust.Path{Namespace: "guest", Name: fmt.Sprintf("s%d", n)}, store.TypeAction, gust.Action{Namespace: "guest", Name: fmt.Sprintf("s%d", n),
			Exec: gust.Exec{Kind: gust.ExecSequence, Components: comps}, Limits: gust.DefaultActionLimits(), Version: "0.0.1"})
	}
	call := func(name string) time.Duration {
		t0 := time.Now()
		out, err := p.svc.Invoke(ctx, activation.Request{Caller: p.guest, Path: gust.Path{Namespace: "guest", Name: name},
			Params: json.RawMessage(`{"i":1}`), Blocking: true, Wait: time.Minute})
		if err != nil || out.Activation == nil || out.Activation.Response.StatusCode != gust.StatusSuccess {
			b.Fatalf("%s: %v %+v", name, err, out.Activation)
		}
		return time.Since(t0)
	}
	var one, ten latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one = append(one, call("s1"))
		ten = append(ten, call("s10"))
	}
	b.StopTimer()
	one.report(b, "sequence1")
	ten.report(b, "sequence10")
	slices.Sort(one)
	slices.Sort(ten)
	b.ReportMetric(float64((ten[len(ten)/2]-one[len(one)/2]).Microseconds())/9, "overhead-per-step-µs")
}
