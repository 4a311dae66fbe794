package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/broker"
)

func live(n, free int) []Heartbeat {
	var out []Heartbeat
	for i := range n {
		out = append(out, Heartbeat{ID: fmt.Sprintf("inv-%d", i), MemoryMB: 1024, FreeMB: free, Kinds: []string{"wasm"}})
	}
	return out
}

func TestPickIsStableAndSpreads(t *testing.T) {
	l := live(4, 1024)
	homes := map[string]int{}
	for i := range 400 {
		key := fmt.Sprintf("/guest/action-%d", i)
		a, ok := Pick(l, key, 256, "wasm")
		b, _ := Pick(l, key, 256, "wasm")
		if !ok || a != b {
			t.Fatalf("pick of %s not stable: %s %s", key, a, b)
		}
		homes[a]++
	}
	for id, n := range homes {
		if n < 50 {
			t.Errorf("invoker %s is home of only %d of 400 actions", id, n)
		}
	}
	// Removing one invoker moves only its actions.
	moved := 0
	for i := range 400 {
		key := fmt.Sprintf("/guest/action-%d", i)
		before, _ := Pick(l, key, 256, "wasm")
		after, _ := Pick(l[1:], key, 256, "wasm")
		if before != after {
			if before != "inv-0" {
				t.Fatalf("%s moved from %s to %s though %s is still live", key, before, after, before)
			}
			moved++
		}
	}
	if moved != homes["inv-0"] {
		t.Errorf("moved %d, want %d", moved, homes["inv-0"])
	}
}

func TestPickStepsPastFullInvokers(t *testing.T) {
	l := live(3, 1024)
	home, _ := Pick(l, "/guest/a", 256, "wasm")
	for i := range l {
		if l[i].ID == home {
			l[i].FreeMB = 128
		}
	}
	next, ok := Pick(l, "/guest/a", 256, "wasm")
	if !ok || next == home {
		t.Fatalf("full home %s still chosen (%s)", home, next)
	}
	for i := range l {
		l[i].FreeMB = 0
	}
	if got, _ := Pick(l, "/guest/a", 256, "wasm"); got != home {
		t.Errorf("all full: got %s, want the home %s to queue it", got, home)
	}
	if _, ok := Pick(l, "/guest/a", 256, "python:3"); ok {
		t.Error("picked an invoker that does not run the kind")
	}
}

func TestRegistryDropsSilentInvokers(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := OpenRegistry(ctx, b.JS, 1, time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := OpenRegistry(ctx, b.JS, 1, time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	hctx, stop := context.WithCancel(ctx)
	die := make(chan struct{})
	go r.Heartbeats(hctx, die, 300*time.Millisecond, func() Heartbeat { return Heartbeat{ID: "a", Kinds: []string{"wasm"}} })
	go r.Heartbeats(hctx, nil, 300*time.Millisecond, func() Heartbeat { return Heartbeat{ID: "b", Kinds: []string{"wasm"}} })
	waitFor(t, func() bool { return len(other.Live()) == 2 }, "both invokers seen")
	close(die) // "a" dies: no more heartbeats, no goodbye
	waitFor(t, func() bool { l := other.Live(); return len(l) == 1 && l[0].ID == "b" }, "silent invoker dropped")
	stop() // "b" stops gracefully and leaves at once
	waitFor(t, func() bool { return len(other.Live()) == 0 }, "stopped invoker gone")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
