package trigger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/gusttest"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// These tests drive feeds as clients do: openwhisk-client-go invokes the
// feed actions of /whisk.system, a paho client publishes to the MQTT
// listener, the CloudEvents SDK sends events.

type feedNode struct {
	*gusttest.Node
	t   *testing.T
	wsk *whisk.Client // guest
	sys *whisk.Client // guest's credential, namespace whisk.system
}

func startFeedNode(t *testing.T, opts ...gusttest.Option) *feedNode {
	t.Helper()
	n := gusttest.Start(t, opts...)
	return &feedNode{Node: n, t: t, wsk: client(t, n, n.Auth, "_"), sys: client(t, n, n.Auth, "whisk.system")}
}

func client(t *testing.T, n *gusttest.Node, auth, ns string) *whisk.Client {
	t.Helper()
	c, err := whisk.NewClient(&http.Client{Timeout: time.Minute}, &whisk.Config{Host: n.URL, AuthToken: auth, Namespace: ns, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// triggerWithEcho creates trigger name and a rule running an echo action.
func (n *feedNode) triggerWithEcho(name string) {
	n.t.Helper()
	code := base64.StdEncoding.EncodeToString(wasmtest.BuildC(n.t, filepath.Join("testdata", "echo.c"), false))
	if _, _, err := n.wsk.Actions.Get("echo", false); err != nil {
		if _, _, err := n.wsk.Actions.Insert(&whisk.Action{Name: "echo", Exec: &whisk.Exec{Kind: "wasm", Code: &code}}, false); err != nil {
			n.t.Fatal(err)
		}
	}
	if _, _, err := n.wsk.Triggers.Insert(&whisk.Trigger{Name: name}, false); err != nil {
		n.t.Fatal(err)
	}
	if _, _, err := n.wsk.Rules.Insert(&whisk.Rule{Name: name + "-echo", Trigger: name, Action: "echo"}, false); err != nil {
		n.t.Fatal(err)
	}
}

// feed invokes a feed action as `wsk trigger create --feed` does and
// returns the result, or the error text of a failed one.
func (n *feedNode) feed(feed, event, trigger string, p map[string]any) (map[string]any, string) {
	n.t.Helper()
	args := map[string]any{"authKey": n.Auth, "lifecycleEvent": event, "triggerName": "/_/" + trigger}
	for k, v := range p {
		args[k] = v
	}
	out, resp, err := n.sys.Actions.Invoke(feed, args, true, true)
	if err != nil {
		if resp == nil || resp.StatusCode != http.StatusBadGateway {
			n.t.Fatalf("invoke %s: %v", feed, err)
		}
		var e struct{ Error string }
		b, _ := json.Marshal(out)
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = err.Error()
		}
		return nil, e.Error
	}
	m, _ := out.(map[string]any)
	return m, ""
}

// triggerActivations lists the records of trigger name, oldest first.
func (n *feedNode) triggerActivations(name string) []gust.Activation {
	n.t.Helper()
	var acts []gust.Activation
	req, _ := http.NewRequest("GET", n.URL+"/api/v1/namespaces/_/activations?docs=true&limit=200&name="+name, nil)
	uuid, key, _ := strings.Cut(n.Auth, ":")
	req.SetBasicAuth(uuid, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&acts); err != nil {
		n.t.Fatal(err)
	}
	slices.Reverse(acts)
	return acts
}

// waitActivations waits until trigger name has at least count records.
func (n *feedNode) waitActivations(name string, count int, within time.Duration) []gust.Activation {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		acts := n.triggerActivations(name)
		if len(acts) >= count {
			return acts
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("trigger %s: %d activations after %s, want %d", name, len(acts), within, count)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func result(t *testing.T, act gust.Activation) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(act.Response.Result, &m); err != nil {
		t.Fatalf("result %s: %v", act.Response.Result, err)
	}
	return m
}

func TestFeedLifecycle(t *testing.T) {
	n := startFeedNode(t)
	if _, _, err := n.wsk.Triggers.Insert(&whisk.Trigger{Name: "t", Annotations: whisk.KeyValueArr{{Key: "feed", Value: "/whisk.system/alarms/alarm"}}}, false); err != nil {
		t.Fatal(err)
	}
	pkg, _, err := n.sys.Packages.Get("alarms")
	if err != nil || len(pkg.Feeds) != 3 || pkg.Publish == nil || !*pkg.Publish {
		t.Fatalf("the alarms package: %+v %v", pkg, err)
	}

	if _, msg := n.feed("alarms/alarm", "CREATE", "t", nil); msg != "alarms trigger feed is missing the cron parameter" {
		t.Errorf("missing cron: %q", msg)
	}
	if _, msg := n.feed("alarms/alarm", "CREATE", "t", map[string]any{"cron": "61 * * * *"}); msg != "cron pattern '61 * * * *' is not valid" {
		t.Errorf("bad cron: %q", msg)
	}
	if _, msg := n.feed("alarms/interval", "CREATE", "t", map[string]any{"minutes": -1}); msg != "the minutes parameter must be an integer greater than zero" {
		t.Errorf("bad minutes: %q", msg)
	}
	if _, msg := n.feed("alarms/once", "CREATE", "t", map[string]any{"date": "2001-01-01T00:00:00Z"}); msg != "date parameter '2001-01-01T00:00:00Z' must be in the future" {
		t.Errorf("past date: %q", msg)
	}
	if _, msg := n.feed("alarms/alarm", "CREATE", "nope", map[string]any{"cron": "* * * * *"}); msg != "Trigger authentication request failed." {
		t.Errorf("missing trigger: %q", msg)
	}
	if out, msg := n.feed("alarms/alarm", "CREATE", "t", map[string]any{"cron": "0 9 * * mon", "timezone": "UTC", "trigger_payload": "hello"}); msg != "" || out["status"] != "success" {
		t.Fatalf("create: %v %q", out, msg)
	}
	if _, msg := n.feed("alarms/alarm", "CREATE", "t", map[string]any{"cron": "* * * * *"}); msg == "" {
		t.Error("a second feed on one trigger was accepted")
	}
	out, msg := n.feed("alarms/alarm", "READ", "t", nil)
	cfg, _ := out["config"].(map[string]any)
	status, _ := out["status"].(map[string]any)
	if msg != "" || cfg["cron"] != "0 9 * * mon" || cfg["name"] != "t" || cfg["namespace"] != "guest" || status["active"] != true {
		t.Fatalf("read: %v %q", out, msg)
	}
	if payload, _ := cfg["payload"].(map[string]any); payload["payload"] != "hello" {
		t.Errorf("a string trigger_payload is wrapped: %v", cfg["payload"])
	}
	if _, msg := n.feed("alarms/alarm", "UPDATE", "t", nil); msg != "no updatable parameters were specified" {
		t.Errorf("empty update: %q", msg)
	}
	if _, msg := n.feed("alarms/alarm", "UPDATE", "t", map[string]any{"cron": "*/5 * * * *"}); msg != "" {
		t.Fatal(msg)
	}
	if _, msg := n.feed("alarms/alarm", "PAUSE", "t", nil); msg != "" {
		t.Fatal(msg)
	}
	out, _ = n.feed("alarms/alarm", "READ", "t", nil)
	if cfg := out["config"].(map[string]any); cfg["cron"] != "*/5 * * * *" || out["status"].(map[string]any)["active"] != false {
		t.Errorf("after update and pause: %v", out)
	}

	// Another namespace's key cannot reach the trigger.
	other, err := n.Keys.Ensure(context.Background(), "other", "")
	if err != nil {
		t.Fatal(err)
	}
	theirs := client(t, n.Node, other.Auth(), "whisk.system")
	_, resp, _ := theirs.Actions.Invoke("alarms/alarm", map[string]any{"authKey": other.Auth(), "lifecycleEvent": "READ", "triggerName": "/guest/t"}, true, true)
	if resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("another namespace read guest's feed: %v", resp)
	}

	if _, msg := n.feed("alarms/alarm", "DELETE", "t", nil); msg != "" {
		t.Fatal(msg)
	}
	if _, msg := n.feed("alarms/alarm", "READ", "t", nil); msg == "" {
		t.Error("read after delete succeeded")
	}
	if _, msg := n.feed("alarms/alarm", "DELETE", "t", nil); msg != "" {
		t.Errorf("a second delete: %q", msg)
	}
}

// TestAlarmRealClock runs a per-second cron alarm on the real clock,
// restarts the node, and checks that every tick fired exactly once.
func TestAlarmRealClock(t *testing.T) {
	dir := t.TempDir()
	n := startFeedNode(t, gusttest.WithDataDir(dir))
	auth := n.Auth
	n.triggerWithEcho("every")
	if out, msg := n.feed("alarms/alarm", "CREATE", "every", map[string]any{"cron": "* * * * * *", "trigger_payload": map[string]any{"k": "v"}}); msg != "" {
		t.Fatalf("create: %v %q", out, msg)
	}
	acts := n.waitActivations("every", 2, 10*time.Second)
	if got := result(t, acts[0]); got["k"] != "v" {
		t.Errorf("tick payload: %v", got)
	}
	var rule struct{ ActivationID string }
	if err := json.Unmarshal([]byte(acts[0].Logs[0]), &rule); err != nil {
		t.Fatal(err)
	}

	n.Stop(t)
	time.Sleep(2500 * time.Millisecond) // ticks are missed while no node runs
	n = startFeedNode(t, gusttest.WithDataDir(dir), gusttest.WithAuth(auth))
	before := len(acts)
	acts = n.waitActivations("every", before+2, 10*time.Second)
	seen := map[int64]bool{}
	for _, a := range acts {
		tick, ok := gust.ActivationIDTime(a.ActivationID)
		if !ok || tick.UnixMilli()%1000 != 0 {
			t.Fatalf("trigger activation %s is not a tick's", a.ActivationID)
		}
		if seen[tick.UnixMilli()] {
			t.Fatalf("tick %s fired twice", tick.UTC())
		}
		seen[tick.UnixMilli()] = true
	}
	// The missed ticks fired once (as the latest of them) right after the
	// restart: no gap of more than one tick after it.
	first, _ := gust.ActivationIDTime(acts[before].ActivationID)
	second, _ := gust.ActivationIDTime(acts[before+1].ActivationID)
	if second.Sub(first) > 1500*time.Millisecond {
		t.Errorf("after the restart: ticks %s then %s", first.UTC(), second.UTC())
	}
	echo := n.waitRecord(rule.ActivationID)
	if !strings.Contains(string(echo), `"k":"v"`) {
		t.Errorf("rule action of a tick: %s", echo)
	}
}

// waitRecord returns the raw record id once stored.
func (n *feedNode) waitRecord(id string) []byte {
	n.t.Helper()
	uuid, key, _ := strings.Cut(n.Auth, ":")
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest("GET", n.URL+"/api/v1/namespaces/_/activations/"+id, nil)
		req.SetBasicAuth(uuid, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			n.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return b
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("activation %s: %d %s", id, resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNATSFeed(t *testing.T) {
	n := startFeedNode(t)
	n.triggerWithEcho("orders")
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "orders.>"}); !strings.Contains(msg, "must start with the namespace") {
		t.Errorf("unscoped subject: %q", msg)
	}
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.a..b"}); msg != "subject parameter 'guest.a..b' is not a valid NATS subject" {
		t.Errorf("bad subject: %q", msg)
	}
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.orders.>"}); msg != "" {
		t.Fatal(msg)
	}
	nc := n.Broker.Conn
	if err := nc.Publish("guest.orders.new", []byte(`{"id":7,"subject":"spoofed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("guest.orders.old", []byte("plain text")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("guest.orders.bin", []byte{0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("guest.elsewhere", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	acts := n.waitActivations("orders", 3, 10*time.Second)
	got := map[string]string{}
	for _, a := range acts {
		m := result(t, a)
		got[m["subject"].(string)] = string(a.Response.Result)
	}
	want := map[string]string{
		"guest.orders.new": `{"id":7,"subject":"guest.orders.new"}`,
		"guest.orders.old": `{"payload":"plain text","subject":"guest.orders.old"}`,
		"guest.orders.bin": `{"encoding":"base64","payload":"//4=","subject":"guest.orders.bin"}`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("message on %s fired %s, want %s", k, got[k], v)
		}
	}
	// A witness published after guest.elsewhere must fire; had that one
	// fired, it would have come before.
	if err := nc.Publish("guest.orders.witness", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	acts = n.waitActivations("orders", 4, 10*time.Second)
	if len(acts) != 4 || result(t, acts[3])["subject"] != "guest.orders.witness" {
		t.Errorf("%d fires, want the three and the witness", len(acts))
	}

	// Deleting the feed stops the subscription when DELETE answers. The
	// witness is another trigger's feed on the same subjects, on the same
	// connection: its fire proves the message published after the DELETE
	// reached this node's connection, so the deleted feed's silence is
	// not a message lost on the way. It does not order a late fire of the
	// deleted feed (each subscription's handler runs on its own
	// goroutine): what rules that out is that DELETE answers only after
	// the subscription was unsubscribed on this connection, which then
	// drops its messages. A subscription left running would fire here
	// before the count below as a rule, though not on every run.
	if _, msg := n.feed("nats/subscribe", "DELETE", "orders", nil); msg != "" {
		t.Fatal(msg)
	}
	n.triggerWithEcho("audit")
	if _, msg := n.feed("nats/subscribe", "CREATE", "audit", map[string]any{"subject": "guest.orders.>"}); msg != "" {
		t.Fatal(msg)
	}
	if err := nc.Publish("guest.orders.late", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	n.waitActivations("audit", 1, 10*time.Second)
	if acts := n.triggerActivations("orders"); len(acts) != 4 {
		t.Errorf("a deleted feed fired: %d fires", len(acts))
	}
}

func withMQTT(c *app.Config) { c.MQTTAddr = "127.0.0.1:0" }

// mqttClient connects a paho client with a namespace's credential.
func mqttClient(t testing.TB, addr, auth, id string) (mqtt.Client, error) {
	t.Helper()
	uuid, key, _ := strings.Cut(auth, ":")
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(uuid).SetPassword(key).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func TestMQTTFeed(t *testing.T) {
	n := startFeedNode(t, withMQTT)
	addr := n.Broker.MQTTAddr()
	if addr == "" {
		t.Fatal("no MQTT listener")
	}
	n.triggerWithEcho("sensors")
	if _, msg := n.feed("mqtt/subscribe", "CREATE", "sensors", map[string]any{"topic": "sensors/#"}); !strings.Contains(msg, "must start with the namespace") {
		t.Errorf("unscoped topic: %q", msg)
	}
	if _, msg := n.feed("mqtt/subscribe", "CREATE", "sensors", map[string]any{"topic": "guest/sensors/+/temp"}); msg != "" {
		t.Fatal(msg)
	}
	if _, err := mqttClient(t, addr, strings.Split(n.Auth, ":")[0]+":"+strings.Repeat("x", 64), "intruder"); err == nil {
		t.Error("a wrong key connected")
	}
	dev, err := mqttClient(t, addr, n.Auth, "device-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		topic   string
		qos     byte
		payload string
	}{
		{"guest/sensors/room.1/temp", 1, `{"celsius":21.5}`},
		{"guest/sensors/room2/temp", 0, "22"},
		{"guest/sensors/room2/humidity", 0, `{"h":40}`},
	} {
		if tok := dev.Publish(m.topic, m.qos, false, m.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", m.topic, tok.Error())
		}
	}
	acts := n.waitActivations("sensors", 2, 10*time.Second)
	got := []string{string(acts[0].Response.Result), string(acts[1].Response.Result)}
	slices.Sort(got)
	want := []string{`{"celsius":21.5,"topic":"guest/sensors/room.1/temp"}`, `{"payload":"22","topic":"guest/sensors/room2/temp"}`}
	if !slices.Equal(got, want) {
		t.Errorf("MQTT fires: %v, want %v", got, want)
	}

	// A device cannot publish into another namespace's topics.
	other, err := n.Keys.Ensure(context.Background(), "other", "")
	if err != nil {
		t.Fatal(err)
	}
	od, err := mqttClient(t, addr, other.Auth(), "device-2")
	if err != nil {
		t.Fatal(err)
	}
	// QoS 1: the server has taken the message when the token completes.
	if tok := od.Publish("guest/sensors/x/temp", 1, false, `{"spoof":true}`); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("the other namespace's publish was not acknowledged")
	}
	// The witness, published after it, must fire; the spoof would have
	// fired before it.
	if tok := dev.Publish("guest/sensors/w/temp", 1, false, `{"witness":true}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the witness: %v", tok.Error())
	}
	acts = n.waitActivations("sensors", 3, 10*time.Second)
	for _, a := range acts {
		if strings.Contains(string(a.Response.Result), "spoof") {
			t.Errorf("another namespace's device fired guest's trigger: %s", a.Response.Result)
		}
	}
	if len(acts) != 3 || result(t, acts[2])["witness"] != true {
		t.Errorf("%d fires, want the two and the witness", len(acts))
	}
}

func TestCloudEvents(t *testing.T) {
	n := startFeedNode(t)
	n.triggerWithEcho("ce")
	target := n.URL + "/api/v1/namespaces/_/triggers/ce/cloudevents"
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(n.Auth))
	c, err := cloudevents.NewClientHTTP(cehttp.WithHeader("Authorization", authz))
	if err != nil {
		t.Fatal(err)
	}
	send := func(structured bool, data any, ct string) {
		t.Helper()
		e := cloudevents.NewEvent()
		e.SetID(fmt.Sprintf("evt-%v", structured))
		e.SetSource("/factory/line-1")
		e.SetType("com.example.sensor.reading")
		e.SetSubject("press-7")
		e.SetExtension("plant", "north")
		if err := e.SetData(ct, data); err != nil {
			t.Fatal(err)
		}
		ctx := cloudevents.ContextWithTarget(context.Background(), target)
		if structured {
			ctx = cloudevents.WithEncodingStructured(ctx)
		}
		res := c.Send(ctx, e)
		var hr *cehttp.Result
		if !cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
			t.Fatalf("send (structured %v): %v", structured, res)
		}
	}
	send(false, map[string]any{"pressure": 3}, cloudevents.ApplicationJSON)
	send(true, map[string]any{"pressure": 4}, cloudevents.ApplicationJSON)
	send(false, "text reading", "text/plain")
	acts := n.waitActivations("ce", 3, 10*time.Second)
	for i, a := range acts {
		m := result(t, a)
		if m["specversion"] != "1.0" || m["source"] != "/factory/line-1" || m["type"] != "com.example.sensor.reading" ||
			m["subject"] != "press-7" || m["plant"] != "north" || m["id"] == nil {
			t.Errorf("event %d attributes: %s", i, a.Response.Result)
		}
	}
	if d, _ := result(t, acts[0])["data"].(map[string]any); d["pressure"] != 3.0 {
		t.Errorf("binary data: %s", acts[0].Response.Result)
	}
	if d, _ := result(t, acts[1])["data"].(map[string]any); d["pressure"] != 4.0 {
		t.Errorf("structured data: %s", acts[1].Response.Result)
	}
	if d := result(t, acts[2])["data"]; d != "text reading" {
		t.Errorf("text data: %s", acts[2].Response.Result)
	}

	// Invalid events are refused with the reason.
	post := func(ct, body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("POST", target, bytes.NewBufferString(body))
		req.Header.Set("Authorization", authz)
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	for _, c := range []struct {
		ct, body string
		hdr      []string
		want     string
	}{
		{"application/cloudevents+json", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, nil, `specversion must be 1.0, not "0.3"`},
		{"application/cloudevents+json", `{"specversion":"1.0","source":"s","type":"t"}`, nil, "the required attribute id is missing"},
		{"application/cloudevents+json", `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`, nil, `time "yesterday" is not an RFC 3339 timestamp`},
		{"application/cloudevents+json", `[1]`, nil, "the body is not a JSON object"},
		{"application/cloudevents-batch+json", `[]`, nil, "batched events are not supported"},
		{"application/json", `{}`, []string{"ce-specversion", "1.0", "ce-id", "1", "ce-source", "s"}, "the required attribute type is missing"},
		{"application/json", `{}`, nil, "want a structured event"},
	} {
		status, msg := post(c.ct, c.body, c.hdr...)
		if status != http.StatusBadRequest || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s: %d %q, want 400 with %q", c.ct, c.body, status, msg, c.want)
		}
	}
}

// TestMQTTDeviceTopics checks that devices of a namespace reach each other
// under its topics at every QoS, with the permissions devices get.
func TestMQTTDeviceTopics(t *testing.T) {
	n := startFeedNode(t, withMQTT)
	addr := n.Broker.MQTTAddr()
	sub, err := mqttClient(t, addr, n.Auth, "listener")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mqttClient(t, addr, n.Auth, "talker")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	for _, subQoS := range []byte{0, 1, 2} {
		tok := sub.Subscribe("guest/cmd/#", subQoS, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() })
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe at QoS %d: %v", subQoS, tok.Error())
		}
		// The server grants the QoS asked for (docs/events.md says so).
		if granted := tok.(*mqtt.SubscribeToken).Result()["guest/cmd/#"]; granted != subQoS {
			t.Errorf("subscribe at QoS %d granted %#x", subQoS, granted)
		}
		for _, pubQoS := range []byte{0, 1, 2} {
			if tok := pub.Publish("guest/cmd/led", pubQoS, false, "on"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish at QoS %d: %v", pubQoS, tok.Error())
			}
			select {
			case topic := <-got:
				if topic != "guest/cmd/led" {
					t.Errorf("received %s", topic)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("subscription at QoS %d got nothing published at QoS %d", subQoS, pubQoS)
			}
		}
		sub.Unsubscribe("guest/cmd/#").WaitTimeout(5 * time.Second)
	}
}

func withNATS(c *app.Config) { c.NATSAddr = "127.0.0.1:0" }

// natsClient connects a nats.go client over TCP with a namespace's
// credential; the server's asynchronous refusals arrive on errs.
func natsClient(t *testing.T, addr, auth string) (nc *nats.Conn, errs chan error, err error) {
	t.Helper()
	uuid, key, _ := strings.Cut(auth, ":")
	errs = make(chan error, 16)
	nc, err = nats.Connect("nats://"+addr, nats.UserInfo(uuid, key), nats.MaxReconnects(0), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(nc.Close)
	return nc, errs, nil
}

// TestNATSClientPort drives the NATS subject feed from a service outside
// Gust: a nats.go client over the client port, logged in with the
// namespace's credential, limited to the namespace's subjects.
func TestNATSClientPort(t *testing.T) {
	n := startFeedNode(t, withNATS)
	addr := n.Broker.NATSAddr()
	if addr == "" {
		t.Fatal("no NATS client port")
	}
	n.triggerWithEcho("orders")
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.orders.>"}); msg != "" {
		t.Fatal(msg)
	}
	other, err := n.Keys.Ensure(context.Background(), "other", "")
	if err != nil {
		t.Fatal(err)
	}
	uuid, _, _ := strings.Cut(n.Auth, ":")
	otherKey := strings.SplitN(other.Auth(), ":", 2)[1]
	for _, auth := range []string{uuid + ":" + strings.Repeat("x", 64), uuid + ":" + otherKey, ":", "gust-internal:x"} {
		if _, _, err := natsClient(t, addr, auth); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Errorf("login as %q: %v", auth, err)
		}
	}
	nc, errs, err := natsClient(t, addr, n.Auth)
	if err != nil {
		t.Fatal(err)
	}
	oc, oerrs, err := natsClient(t, addr, other.Auth())
	if err != nil {
		t.Fatal(err)
	}

	// A service's message fires the trigger: the feed listens once
	// CREATE answered, so one message right after it is enough.
	if err := nc.Publish("guest.orders.x", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	acts := n.waitActivations("orders", 1, 10*time.Second)
	if got := string(acts[0].Response.Result); got != `{"n":1,"subject":"guest.orders.x"}` {
		t.Errorf("fired with %s", got)
	}
	// The rule's activation records the trigger activation as its cause,
	// as OpenWhisk does, and nothing else says why it ran.
	var line struct{ ActivationID string }
	if err := json.Unmarshal([]byte(acts[0].Logs[0]), &line); err != nil {
		t.Fatal(err)
	}
	var rule gust.Activation
	if err := json.Unmarshal(n.waitRecord(line.ActivationID), &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Cause != acts[0].ActivationID {
		t.Errorf("rule activation cause %q, want the trigger activation %s", rule.Cause, acts[0].ActivationID)
	}
	if _, ok := rule.Annotations.Get("causedBy"); ok {
		t.Errorf("rule activation annotated causedBy: %v", rule.Annotations)
	}

	// Everything outside the namespace's subjects is refused.
	for _, c := range []struct {
		who     string
		conn    *nats.Conn
		errs    chan error
		sub     bool
		subject string
	}{
		{"other", oc, oerrs, false, "guest.orders.y"},
		{"other", oc, oerrs, true, "guest.>"},
		{"guest", nc, errs, false, "other.orders.x"},
		{"guest", nc, errs, true, "other.>"},
		{"guest", nc, errs, true, "$JS.API.>"},
		{"guest", nc, errs, false, "$JS.API.INFO"},
		{"guest", nc, errs, false, "$KV.feeds.guest.orders"},
		{"guest", nc, errs, true, "act.>"},
		{"guest", nc, errs, true, "_INBOX.>"},
		{"guest", nc, errs, true, ">"},
		{"guest", nc, errs, true, "*.orders.>"},
	} {
		var err error
		if c.sub {
			_, err = c.conn.Subscribe(c.subject, func(*nats.Msg) {})
		} else {
			err = c.conn.Publish(c.subject, []byte(`{}`))
		}
		if err == nil {
			err = c.conn.Flush()
		}
		if err != nil {
			t.Fatalf("%s %s: %v", c.who, c.subject, err)
		}
		select {
		case err := <-c.errs:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+c.subject+`"`) {
				t.Errorf("%s, subscribe %v to %s: %v", c.who, c.sub, c.subject, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s may subscribe (%v) or publish to %s", c.who, c.sub, c.subject)
		}
	}
	// The witness: a message allowed, published after the refused ones
	// (each of which the server had handled), must fire, and alone.
	if err := nc.Publish("guest.orders.witness", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	acts = n.waitActivations("orders", 2, 10*time.Second)
	if len(acts) != 2 || result(t, acts[1])["subject"] != "guest.orders.witness" {
		t.Errorf("refused messages fired the trigger: %d fires, want the first and the witness", len(acts))
	}
}

// TestMQTTDeviceSubscribeScoped checks that a device cannot subscribe
// outside its namespace's topics: another namespace's, or Gust's own.
func TestMQTTDeviceSubscribeScoped(t *testing.T) {
	n := startFeedNode(t, withMQTT)
	addr := n.Broker.MQTTAddr()
	other, err := n.Keys.Ensure(context.Background(), "other", "")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := mqttClient(t, addr, n.Auth, "guest-device")
	if err != nil {
		t.Fatal(err)
	}
	od, err := mqttClient(t, addr, other.Auth(), "other-device")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	for _, topic := range []string{"other/#", "other/cmd/led", "+/cmd/led", "#", "act/#", "$MQTT/msgs/#"} {
		tok := dev.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() })
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
		if code := tok.(*mqtt.SubscribeToken).Result()[topic]; code != 0x80 {
			t.Errorf("subscribe to %s granted (SUBACK %#x)", topic, code)
		}
	}
	// The witness: a topic the device may subscribe to, published after
	// the other namespace's message was acknowledged. The server routes
	// in order, so a message it had routed to the device arrives first.
	if tok := dev.Subscribe("guest/witness", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe to the witness: %v", tok.Error())
	}
	if tok := od.Publish("other/cmd/led", 1, false, "on"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := dev.Publish("guest/witness", 1, false, "w"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case topic := <-got:
		if topic != "guest/witness" {
			t.Errorf("a guest device received %s of another namespace", topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the witness did not arrive")
	}
}

// TestRESTTriggerDeleteStopsFeed deletes a feed's trigger through the REST
// API, which does not tell the feed: the feed stops at its next event, and
// creating the trigger and its feed again works.
func TestRESTTriggerDeleteStopsFeed(t *testing.T) {
	n := startFeedNode(t)
	nc := n.Broker.Conn
	n.triggerWithEcho("orders")
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.orders.>"}); msg != "" {
		t.Fatal(msg)
	}
	// The feed listens once CREATE answered: one message fires it.
	_ = nc.Publish("guest.orders.new", []byte(`{}`))
	before := len(n.waitActivations("orders", 1, 10*time.Second))

	if _, _, err := n.wsk.Triggers.Delete("orders"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Publish("guest.orders.after-delete", []byte(`{}`))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, msg := n.feed("nats/subscribe", "READ", "orders", nil)
		status, _ := out["status"].(map[string]any)
		reason, _ := status["reason"].(map[string]any)
		if msg == "" && status["active"] == false && reason["message"] == "the trigger no longer exists" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed of a deleted trigger: %v %q", out, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The trigger is created again: the disabled leftover fires nothing,
	// and does not block the new feed.
	if _, _, err := n.wsk.Triggers.Insert(&whisk.Trigger{Name: "orders"}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.wsk.Rules.Insert(&whisk.Rule{Name: "orders-echo-2", Trigger: "orders", Action: "echo"}, false); err != nil {
		t.Fatal(err)
	}
	// The leftover's message is published before the new feed replaces
	// it; the new feed's witness, published after it, must fire, and alone.
	_ = nc.Publish("guest.orders.leftover", []byte(`{}`))
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.orders.>"}); msg != "" {
		t.Fatalf("CREATE after the trigger was created again: %q", msg)
	}
	if _, msg := n.feed("nats/subscribe", "CREATE", "orders", map[string]any{"subject": "guest.orders.>"}); !strings.Contains(msg, "has a feed already") {
		t.Errorf("a second feed on the live trigger: %q", msg)
	}
	_ = nc.Publish("guest.orders.witness", []byte(`{}`))
	acts := n.waitActivations("orders", before+1, 10*time.Second)
	if len(acts) != before+1 || result(t, acts[before])["subject"] != "guest.orders.witness" {
		t.Fatalf("the leftover feed fired the new trigger: fires %d, want %d with the witness last (last %s)", len(acts), before+1, acts[len(acts)-1].Response.Result)
	}
}
