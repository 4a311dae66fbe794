package trigger

import (
	"context"
	"net"
	"strings"
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
