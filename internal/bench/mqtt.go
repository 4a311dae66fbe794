package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/trigger"
)

// Variants of mqtt-publish.
const (
	variantMQTTFloor  = "floor: MQTT publish → NATS subscriber"
	variantMQTTWasm   = "wasm reactor (Go): publish → record"
	variantMQTTPython = "python:3: publish → record"
)

// mqttPath is one event path of mqtt-publish: a topic, its feed trigger,
// the rule to a warm action, and the watch that sees the action's records.
type mqttPath struct {
	variant string
	topic   string
	watch   *recordWatch
}

// prepareMQTT sets up the edge path of the events issue on the bench's
// node, whose MQTT listener is open (app.Config.MQTTAddr): a real MQTT
// client (paho) logged in with the guest namespace's UUID and key; for
// each action (a no-op Go reactor, a no-op python:3), a trigger fed by
// /whisk.system/mqtt/subscribe on a topic of its own under
// <namespace>/sensors/, with a rule to the action. The floor is the same
// client's publish to a third topic, received by a NATS subscriber of the
// mapped subject on the node's server.
func (r *runner) prepareMQTT(ctx context.Context) (*load, error) {
	if !r.tgt.inProcess() {
		return nil, errors.New("publishes to the node's MQTT listener and watches its NATS server: needs the bench's own node (not --apihost)")
	}
	node := r.tgt.node
	addr := node.Broker.MQTTAddr()
	if addr == "" {
		return nil, errors.New("the node has no MQTT listener")
	}
	guest := node.Guest
	ns := guest.Namespace
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("gust-bench").
		SetUsername(guest.UUID).SetPassword(guest.Key).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("MQTT connect timed out")
	} else if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("MQTT connect: %w", err)
	}
	r.closers = append(r.closers, func() { client.Disconnect(100) })
	publish := func(topic string, payload []byte) error {
		tok := client.Publish(topic, 0, false, payload)
		if !tok.WaitTimeout(5 * time.Second) {
			return fmt.Errorf("publish to %s timed out", topic)
		}
		return tok.Error()
	}

	floorTopic := ns + "/sensors/floor"
	subject, err := trigger.TopicToSubject(floorTopic, false)
	if err != nil {
		return nil, err
	}
	nc, err := node.Broker.Connect("gust-bench-mqtt-floor")
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, nc.Close)
	got := make(chan struct{}, 64)
	if _, err := nc.Subscribe(subject, func(*nats.Msg) { got <- struct{}{} }); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}

	var paths []mqttPath
	for _, p := range []struct{ variant, short, suffix string }{
		{variantMQTTWasm, "noop-go-reactor", "x"},
		{variantMQTTPython, "noop-python", "y"},
	} {
		mp, err := r.mqttPath(ctx, p.variant, p.short, ns+"/sensors/"+p.suffix, publish)
		if err != nil {
			if p.short == "noop-go-reactor" {
				return nil, err
			}
			r.markUnavailable("mqtt-publish", p.variant+": "+err.Error())
			continue
		}
		paths = append(paths, mp)
	}

	payload := []byte(`{"celsius":21.5}`)
	// floor publishes and waits for the subscriber, for d, at least 5 times.
	floor := func(ctx context.Context, d time.Duration) (figures, error) {
		var lat []time.Duration
		for start := time.Now(); time.Since(start) < d || len(lat) < 5; {
			t0 := time.Now()
			if err := publish(floorTopic, payload); err != nil {
				return figures{}, err
			}
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				return figures{}, errors.New("the NATS subscriber got no message within 5s")
			case <-ctx.Done():
				return figures{}, ctx.Err()
			}
			lat = append(lat, time.Since(t0))
		}
		return summarize(lat, 0), nil
	}
	measure := func(ctx context.Context, _ int) ([]variant, error) {
		if _, err := floor(ctx, r.warmup()); err != nil {
			return nil, err
		}
		f, err := floor(ctx, r.brief())
		if err != nil {
			return nil, err
		}
		vs := []variant{{name: variantMQTTFloor, f: f, conc: 1, own: true}}
		for _, p := range paths {
			if _, err := r.mqttEvents(ctx, p, publish, r.warmup()); err != nil {
				return nil, err
			}
			f, err := r.mqttEvents(ctx, p, publish, r.brief())
			if err != nil {
				return nil, err
			}
			vs = append(vs, variant{name: p.variant, f: f, conc: 1, base: variantMQTTFloor})
		}
		return vs, nil
	}
	return &load{name: "mqtt-publish", measure: measure, once: true, rounds: newRounds}, nil
}

// mqttPath creates the action, trigger, feed and rule of one event path
// and sends it a first event, which also warms the action.
func (r *runner) mqttPath(ctx context.Context, variant, short, topic string, publish func(string, []byte) error) (mqttPath, error) {
	name, a, err := r.benchAction(ctx, short)
	if err != nil {
		return mqttPath{}, err
	}
	name += "-mqtt"
	trig, rule := name+"-trigger", name+"-rule"
	if err := r.createAction(ctx, name, a); err != nil {
		return mqttPath{}, err
	}
	if _, err := r.tgt.api.PutTrigger(ctx, trig, client.EntityPut{}, true); err != nil {
		return mqttPath{}, err
	}
	// As `wsk trigger create T --feed /whisk.system/mqtt/subscribe -p topic …`.
	feed, err := json.Marshal(map[string]any{"authKey": r.tgt.node.Guest.Auth(), "lifecycleEvent": "CREATE", "triggerName": "/_/" + trig, "topic": topic})
	if err != nil {
		return mqttPath{}, err
	}
	status, body, _, err := r.tgt.api.Invoke(ctx, "/whisk.system/mqtt/subscribe", feed, client.InvokeOpts{Blocking: true, Result: true})
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d: %s", status, bytes.TrimSpace(body))
	}
	if err != nil {
		return mqttPath{}, fmt.Errorf("feed: %w", err)
	}
	if _, err := r.tgt.api.PutRule(ctx, rule, client.RulePut{Trigger: "/_/" + trig, Action: "/_/" + name}, true); err != nil {
		return mqttPath{}, err
	}
	w, err := watchRecords(r.tgt.node.Broker, r.tgt.node.Guest.Namespace, name, 64)
	if err != nil {
		return mqttPath{}, err
	}
	r.closers = append(r.closers, w.close)
	p := mqttPath{variant: variant, topic: topic, watch: w}
	if _, err := r.mqttEvents(ctx, p, publish, 0); err != nil {
		return mqttPath{}, fmt.Errorf("first event: %w", err)
	}
	return p, nil
}

// mqttEvents publishes events to p one at a time, for d and at least 5
// times, and measures each from the publish until the record of the rule's
// action is readable by id through the API: the watch names the record as
// it reaches the store, then it is polled back to back.
func (r *runner) mqttEvents(ctx context.Context, p mqttPath, publish func(string, []byte) error, d time.Duration) (figures, error) {
	var lat []time.Duration
	for start := time.Now(); time.Since(start) < d || len(lat) < 5; {
		p.watch.drain()
		t0 := time.Now()
		if err := publish(p.topic, []byte(`{"celsius":`+strconv.Itoa(20+len(lat)%10)+`}`)); err != nil {
			return figures{}, err
		}
		rec, err := p.watch.next(ctx, 10*time.Second)
		if err != nil {
			return figures{}, fmt.Errorf("%s: %w", p.topic, err)
		}
		if err := r.tgt.awaitRecord(ctx, r.setup, rec.id); err != nil {
			return figures{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return summarize(lat, 0), nil
}
