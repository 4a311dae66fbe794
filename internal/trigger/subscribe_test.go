package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/gust"
)

// slowDialer makes every write of a connection take delay: a link on
// which a subscription reaches the server well after Subscribe returned.
type slowDialer struct{ delay time.Duration }

func (d slowDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return slowConn{c, d.delay}, nil
}

type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Write(b []byte) (int, error) {
	time.Sleep(c.delay)
	return c.Conn.Write(b)
}

// subWorld is an alarmWorld whose server listens on TCP; the feed nodes
// reach it over a slow link, and pub is a fast in-process publisher.
func subWorld(t *testing.T) (w *alarmWorld, pub *nats.Conn) {
	t.Helper()
	w, b := newWorld(t, broker.Config{NATSAddr: "127.0.0.1:0",
		ClientAuth: func(user, pass string) ([]string, bool) { return []string{">"}, user == "feeds" && pass == "pw" }})
	nc, err := nats.Connect("nats://"+b.NATSAddr(), nats.UserInfo("feeds", "pw"), nats.SetCustomDialer(slowDialer{300 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w.conn = nc
	return w, b.Conn
}

// publish sends one message and waits until the server has it.
func publish(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(`{"at":"`+subject+`"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitFires waits until count fires were made.
func waitFires(t *testing.T, w *alarmWorld, count int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(w.fires.fired()) < count; {
		if time.Now().After(deadline) {
			t.Fatalf("%d fires, want %d", len(w.fires.fired()), count)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscriptionLiveWhenEventAnswers checks that a subscription feed
// listens when CREATE, UPDATE and UNPAUSE answer, and has stopped when
// PAUSE does: one message published right after each answer, from
// another connection, fires (or not) as the answer says. The feed node's
// link is slow, so a subscription still on its way to the server loses
// the message.
func TestSubscriptionLiveWhenEventAnswers(t *testing.T) {
	w, pub := subWorld(t)
	n := w.node("n1")
	w.create(n, feedNATS, map[string]any{"subject": "guest.orders.>"})
	publish(t, pub, "guest.orders.1")
	waitFires(t, w, 1)

	if err := w.event(n, feedNATS, "UPDATE", map[string]any{"subject": "guest.invoices.>"}); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "guest.invoices.1")
	waitFires(t, w, 2)

	if err := w.event(n, feedNATS, "PAUSE", nil); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "guest.invoices.paused")
	if err := w.event(n, feedNATS, "UNPAUSE", nil); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "guest.invoices.2")
	// The message after UNPAUSE is the witness: had the paused one fired,
	// it would have fired before it.
	waitFires(t, w, 3)
	time.Sleep(50 * time.Millisecond) // a fire after the witness would be counted too
	if got := len(w.fires.fired()); got != 3 {
		t.Errorf("%d fires, want 3: the message published while paused fired", got)
	}
}

// TestSubscriptionFailureFailsCreate checks that a CREATE whose
// subscription cannot start says so and leaves no registration behind
// (which would claim a feed that never fires).
func TestSubscriptionFailureFailsCreate(t *testing.T) {
	w, _ := subWorld(t)
	w.conn.Close()
	n := w.node("n1")
	err := w.event(n, feedMQTT, "CREATE", map[string]any{"topic": "guest/sensors/#"})
	if err == nil || gust.KindOf(err) != gust.KindUnavailable {
		t.Fatalf("CREATE on a closed connection: %v", err)
	}
	if _, err := w.feeds.Get(context.Background(), "guest", "tick"); gust.KindOf(err) != gust.KindNotFound {
		t.Errorf("the registration stayed: %v", err)
	}
	// Without a connection at all, the same.
	w.conn = nil
	n2 := w.node("n2")
	if err := w.event(n2, feedNATS, "CREATE", map[string]any{"subject": "guest.x"}); err == nil || !strings.Contains(err.Error(), "no NATS connection") {
		t.Errorf("CREATE without a connection: %v", err)
	}
}

// breakDialer dials the server until broken: then it closes the
// connection it made and refuses to dial again until healed.
type breakDialer struct {
	mu     sync.Mutex
	broken bool
	conn   net.Conn
}

func (d *breakDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken {
		return nil, errors.New("link down")
	}
	c, err := net.Dial(network, address)
	d.conn = c
	return c, err
}

func (d *breakDialer) set(broken bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.broken = broken
	if broken && d.conn != nil {
		d.conn.Close()
	}
}

// breakWorld is an alarmWorld with a node n whose link to the server
// (over TCP, through d) the test can break; down and up tell when the
// node's connection saw it go and come back, pub is another connection.
func breakWorld(t *testing.T) (w *alarmWorld, n *Feeds, d *breakDialer, down, up chan struct{}, pub *nats.Conn) {
	t.Helper()
	w, b := newWorld(t, broker.Config{NATSAddr: "127.0.0.1:0",
		ClientAuth: func(user, pass string) ([]string, bool) { return []string{">"}, user == "feeds" && pass == "pw" }})
	d = &breakDialer{}
	down, up = make(chan struct{}, 8), make(chan struct{}, 8)
	nc, err := nats.Connect("nats://"+b.NATSAddr(), nats.UserInfo("feeds", "pw"), nats.SetCustomDialer(d),
		nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { notify(down) }),
		nats.ReconnectHandler(func(*nats.Conn) { notify(up) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n = New(Config{Entities: w.ents, Keys: w.keys, Store: w.feeds, Records: w.fires, Node: "n1", Manual: true, Now: w.now, Conn: nc})
	if err := n.Start(context.Background(), w.fires); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return w, n, d, down, up, b.Conn
}

// TestSubscriptionRetriedAfterFailure checks that a subscription that
// could not be confirmed is tried again until it listens: an UNPAUSE
// that failed keeps failing when repeated while the node does not
// listen (it wrote nothing the second time), and the node listens, and
// the repeat succeeds, once the link is back, without any other write.
func TestSubscriptionRetriedAfterFailure(t *testing.T) {
	w, n, d, down, up, pub := breakWorld(t)
	w.create(n, feedNATS, map[string]any{"subject": "guest.orders.>"})
	if err := w.event(n, feedNATS, "PAUSE", nil); err != nil {
		t.Fatal(err)
	}

	// While the link is down no answer comes: a short bound makes each
	// attempt fail soon (a healthy link keeps the default, load or not).
	setFlush := func(d time.Duration) { n.mu.Lock(); n.subscribeFlush = d; n.mu.Unlock() }
	setFlush(200 * time.Millisecond)
	d.set(true)
	recv(t, down)
	for range 2 { // the repeat wrote nothing, and must not claim to listen either
		if err := w.event(n, feedNATS, "UNPAUSE", nil); gust.KindOf(err) != gust.KindUnavailable {
			t.Fatalf("UNPAUSE with the link down: %v", err)
		}
	}
	rev := w.feed().Revision

	setFlush(defaultSubscribeFlush)
	d.set(false)
	recv(t, up)
	key := w.feed().Key()
	waitFor(t, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		st := n.state[key]
		return st.rev == rev && st.err == nil
	})
	if err := w.event(n, feedNATS, "UNPAUSE", nil); err != nil {
		t.Fatalf("UNPAUSE once the subscription was retried: %v", err)
	}
	if got := w.feed().Revision; got != rev {
		t.Errorf("the repeated UNPAUSE wrote (revision %d, was %d)", got, rev)
	}
	publish(t, pub, "guest.orders.1")
	waitFires(t, w, 1)
}

// recv waits for an event on c.
func recv(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s")
	}
}

// TestCreateCleanupOutlivesCaller checks that a CREATE whose caller went
// away before the subscription was confirmed still removes its
// registration (no feed left claiming to listen), and says why.
func TestCreateCleanupOutlivesCaller(t *testing.T) {
	w, n, d, down, _, _ := breakWorld(t)
	n.mu.Lock()
	n.subscribeFlush = time.Second // the link stays down: only bounds the test
	n.mu.Unlock()
	d.set(true)
	recv(t, down)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the caller leaves once the registration is written
		for ctx.Err() == nil {
			if _, err := w.feeds.Get(context.Background(), "guest", "tick"); err == nil {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	raw, _ := json.Marshal(map[string]any{"authKey": w.guest.Auth(), "triggerName": "/_/tick", "lifecycleEvent": "CREATE", "subject": "guest.x"})
	path, _ := gust.ParsePath("/whisk.system/"+feedNATS, "_")
	_, err := n.lifecycle(ctx, path, raw)
	if gust.KindOf(err) != gust.KindUnavailable || !strings.Contains(gust.MessageOf(err), "request ended") {
		t.Errorf("CREATE whose caller left: %v (kind %d)", err, gust.KindOf(err))
	}
	if _, err := w.feeds.Get(context.Background(), "guest", "tick"); gust.KindOf(err) != gust.KindNotFound {
		t.Errorf("the registration stayed: %v", err)
	}
}

// notify records an event without blocking the connection's callbacks.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
