package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/broker"
	"github.com/gust-faas/gust/internal/store"
)

// recordWatch notes when activation records of one action reach the
// activation store of the bench's own node. It is a core NATS subscription,
// on an in-process connection of its own, to the store's subjects
// (act.<namespace>.<action>.<id>, package store): the server hands it each
// record as it takes the record into the stream. That is how the bench
// learns the id of an activation it did not start itself (the rule action
// of an MQTT event), and times a thousand records without polling each.
type recordWatch struct {
	nc  *nats.Conn
	ids chan seenRecord
}

type seenRecord struct {
	id string
	at time.Time
}

// watchRecords starts a watch for the records of action in namespace ns;
// buffer records may wait to be read before the subscription stalls.
func watchRecords(b *broker.Broker, ns, action string, buffer int) (*recordWatch, error) {
	nc, err := b.Connect("gust-bench-watch-" + action)
	if err != nil {
		return nil, err
	}
	w := &recordWatch{nc: nc, ids: make(chan seenRecord, buffer)}
	_, err = nc.Subscribe("act."+store.Token(ns)+"."+store.Token(action)+".*", func(m *nats.Msg) {
		w.ids <- seenRecord{id: m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], at: time.Now()}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("watch records of %s: %w", action, err)
	}
	return w, nil
}

// drain forgets the records seen so far.
func (w *recordWatch) drain() {
	for {
		select {
		case <-w.ids:
		default:
			return
		}
	}
}

// next waits up to limit for the next record.
func (w *recordWatch) next(ctx context.Context, limit time.Duration) (seenRecord, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case s := <-w.ids:
		return s, nil
	case <-t.C:
		return seenRecord{}, fmt.Errorf("no activation record within %s", limit)
	case <-ctx.Done():
		return seenRecord{}, ctx.Err()
	}
}

// collect waits up to limit for the records of every id in want and
// returns when each was first seen.
func (w *recordWatch) collect(ctx context.Context, want map[string]bool, limit time.Duration) (map[string]time.Time, error) {
	seen := make(map[string]time.Time, len(want))
	deadline := time.Now().Add(limit)
	for len(seen) < len(want) {
		s, err := w.next(ctx, time.Until(deadline))
		if err != nil {
			return seen, fmt.Errorf("%d of %d records: %w", len(seen), len(want), err)
		}
		if _, dup := seen[s.id]; want[s.id] && !dup {
			seen[s.id] = s.at
		}
	}
	return seen, nil
}

func (w *recordWatch) close() { w.nc.Close() }
