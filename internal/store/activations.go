package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gust-faas/gust/internal/gust"
)

// ActivationsConfig sizes the activation stream. Retention is bounded by age
// and by count: the server keeps ~250 B of index memory per record (one
// subject per record makes get-by-id fast), so the count cap bounds memory.
type ActivationsConfig struct {
	MaxAge   time.Duration // default 7 days
	MaxMsgs  int64         // default 1,000,000
	MaxBytes int64         // default 4 GiB
	Replicas int
	// MaxResult is the largest result a record holds (default
	// gust.DefaultLimits().MaxResultSize): OpenActivations says so when
	// the server's max_payload cannot take such a record.
	MaxResult int
}

const activationStream = "ACTIVATIONS"

// Activations stores activation records in the stream ACTIVATIONS under
// subjects act.<ns>.<name>.<id>, where name is "[pkg/]action" escaped.
// Writes are asynchronous and batched by a writer goroutine; records are
// readable from memory until the stream has acknowledged them, so a caller
// can read its activation as soon as the invoke returns.
type Activations struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	log    *slog.Logger
	prefix string // direct-get API subject
	maxRec int    // largest record, from the server's max_payload (recordLimit)
	stream jetstream.Stream
	names  RecordNamer // nil: Get uses the wildcard only

	in      chan pending
	mu      sync.RWMutex
	pending map[string]pending // by activation id, until acked
	puts    uint64             // records queued so far; orders pending records
	written chan struct{}      // closed (and replaced) each time the writer retires a batch
	wg      sync.WaitGroup
	closed  chan struct{}
}

type pending struct {
	id      string
	ns      string
	name    string
	subject string
	data    []byte
	done    chan error // optional: told when the record is durable
	order   uint64     // queueing order: activation ids order by time only to the millisecond
}

// OpenActivations creates or updates the stream and starts the writer.
func OpenActivations(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg ActivationsConfig, log *slog.Logger) (*Activations, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = 1_000_000
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 4 << 30
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        activationStream,
		Description: "Gust activation records",
		Subjects:    []string{"act.>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxMsgs:     cfg.MaxMsgs,
		MaxBytes:    cfg.MaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		AllowDirect: true,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("activation stream: %w", err)
	}
	if cfg.MaxResult == 0 {
		cfg.MaxResult = gust.DefaultLimits().MaxResultSize
	}
	if !resultFits(nc.MaxPayload(), cfg.MaxResult) {
		// Not refused: a server with the default 1 MB still stores every
		// record but those whose result nears the limit; those are lost
		// (Put fails), which the operator must know from the start.
		log.Error("the server's max_payload cannot hold an activation record with the largest result: such records will not be stored; raise max_payload or lower the result limit",
			"max_payload", nc.MaxPayload(), "record_limit", recordLimit(nc.MaxPayload()), "max_result", cfg.MaxResult, "needed", cfg.MaxResult+resultRoom)
	}
	a := &Activations{
		js: js, nc: nc, log: log, stream: stream,
		prefix:  "$JS.API.DIRECT.GET." + activationStream,
		maxRec:  recordLimit(nc.MaxPayload()),
		in:      make(chan pending, 4096),
		pending: make(map[string]pending),
		written: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	a.wg.Add(1)
	go a.writer()
	return a, nil
}

// Subject returns the subject of a record.
func activationSubject(ns, name, id string) string {
	return "act." + token(ns) + "." + token(name) + "." + id
}

// Put queues a record for writing. The record must be the extended
// activation JSON. When durable is non-nil it receives the outcome of the
// write once the stream acknowledged it (or failed for good).
func (a *Activations) Put(act *gust.Activation, durable chan error) error {
	// AppendJSON directly: json.Marshal would compact its output again.
	data, err := act.AppendJSON(make([]byte, 0, 768))
	if err != nil {
		return fmt.Errorf("encode activation: %w", err)
	}
	if len(data) > a.maxRec {
		if data, err = fitRecord(act, len(data), a.maxRec); err != nil {
			return err
		}
	}
	name := activationName(act)
	p := pending{id: act.ActivationID, ns: act.Namespace, name: name, subject: activationSubject(act.Namespace, name, act.ActivationID), data: data, done: durable}
	a.mu.Lock()
	a.puts++
	p.order = a.puts
	a.pending[p.id] = p
	a.mu.Unlock()
	select {
	case a.in <- p:
		return nil
	case <-a.closed:
		a.forget(p.id)
		return errors.New("activation store is closed")
	}
}

// recordLimit keeps a record within the largest message the server takes
// (its max_payload: 8 MB for the embedded server, broker.Config; 1 MB by
// default for an external one), with room for its subject and headers.
// Logs (up to 10 MB, as OpenWhisk's) are truncated to fit (fitRecord);
// a result (up to MaxResultSize, 1 MB by default) is not, so the limit
// must hold the largest result plus resultRoom (see OpenActivations).
func recordLimit(maxPayload int64) int {
	const room = 64 << 10
	if maxPayload <= 2*room {
		return int(maxPayload / 2)
	}
	return int(maxPayload - room)
}

// resultRoom is what a record needs besides its result: the activation's
// fields, annotations and the note on truncated logs.
const resultRoom = 16 << 10

// resultFits reports whether a record with a result of maxResult bytes
// fits a server's max_payload.
func resultFits(maxPayload int64, maxResult int) bool {
	return recordLimit(maxPayload) >= maxResult+resultRoom
}

// fitRecord encodes act with as many of its first log lines as fit in
// max bytes, and a last line saying the rest were dropped.
func fitRecord(act *gust.Activation, size, max int) ([]byte, error) {
	a := *act
	keep := len(a.Logs)
	for {
		// Drop lines from the end until their bytes (plus the quotes and
		// comma each costs) cover the excess, with a little to spare for
		// escapes and the note.
		over := size - max + 1024
		for over > 0 && keep > 0 {
			keep--
			over -= len(a.Logs[keep]) + 3
		}
		a.Logs = append(slices.Clip(act.Logs[:keep]), fmt.Sprintf("%-30s stderr: Logs were truncated to fit the activation record (%d of %d lines kept).",
			time.Now().UTC().Format(time.RFC3339Nano), keep, len(act.Logs)))
		data, err := json.Marshal(&a)
		if err != nil {
			return nil, fmt.Errorf("encode activation: %w", err)
		}
		if len(data) <= max {
			return data, nil
		}
		if keep == 0 {
			return nil, fmt.Errorf("activation record of %d bytes is larger than %d bytes without its logs", len(data), max)
		}
		size = len(data)
	}
}

// activationName is "[pkg/]name" from the record's path annotation, as the
// list filter `name` expects it.
func activationName(act *gust.Activation) string {
	if raw, ok := act.Annotations.Get("path"); ok {
		var path string
		if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			path = string(raw[1 : len(raw)-1]) // no escapes: the common case, without a decode
			if strings.Count(path, "/") < 2 {
				return act.Name // "ns/name": no package
			}
		}
		if path != "" || json.Unmarshal(raw, &path) == nil {
			if p, err := gust.ParsePath("/"+path, act.Namespace); err == nil && p.Package != "" {
				return p.Package + "/" + p.Name
			}
		}
	}
	return act.Name
}

func (a *Activations) forget(id string) {
	a.mu.Lock()
	delete(a.pending, id)
	a.mu.Unlock()
}

// writer publishes queued records asynchronously in batches and retires them
// from the pending map once acknowledged. A failed publish is retried with
// the same message id, so a retry after a lost ack is not stored twice.
func (a *Activations) writer() {
	defer a.wg.Done()
	batch := make([]pending, 0, 256)
	for {
		p, ok := <-a.in
		if !ok {
			return
		}
		batch = append(batch[:0], p)
	fill:
		for len(batch) < cap(batch) {
			select {
			case p, ok := <-a.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		a.publish(batch)
		a.mu.Lock()
		close(a.written)
		a.written = make(chan struct{})
		a.mu.Unlock()
	}
}

func (a *Activations) publish(batch []pending) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for attempt := 0; ; attempt++ {
		failed := 0
		for i, p := range batch {
			if p.id == "" {
				continue // done
			}
			f, err := a.js.PublishMsgAsync(&nats.Msg{Subject: p.subject, Data: p.data}, jetstream.WithMsgID(p.id), jetstream.WithStallWait(5*time.Second))
			if errors.Is(err, nats.ErrMaxPayload) {
				// No retry makes it smaller; Put keeps records below it.
				a.log.Error("activation record too large to store", "id", p.id, "bytes", len(p.data))
				futures[i] = nil
				a.done(batch[i], fmt.Errorf("activation record of %d bytes is too large to store: %w", len(p.data), err))
				batch[i].id = ""
				continue
			}
			if err != nil {
				futures[i] = nil
				failed++
				continue
			}
			futures[i] = f
		}
		for i, f := range futures {
			if f == nil || batch[i].id == "" {
				continue
			}
			select {
			case <-f.Ok():
				a.done(batch[i], nil)
				batch[i].id = ""
			case err := <-f.Err():
				a.log.Warn("activation write failed, retrying", "id", batch[i].id, "err", err)
				failed++
			}
		}
		if failed == 0 {
			return
		}
		if attempt >= 20 {
			for i := range batch {
				if batch[i].id != "" {
					a.log.Error("activation record lost after retries", "id", batch[i].id)
					a.done(batch[i], errors.New("activation record could not be stored"))
				}
			}
			return
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
}

func (a *Activations) done(p pending, err error) {
	a.forget(p.id)
	if p.done != nil {
		p.done <- err
	}
}

// Close writes every queued record and stops the writer.
func (a *Activations) Close() {
	close(a.closed)
	close(a.in)
	a.wg.Wait()
}

// Get returns the extended JSON record of id in namespace ns.
func (a *Activations) Get(ctx context.Context, ns, id string) (json.RawMessage, error) {
	a.mu.RLock()
	p, ok := a.pending[id]
	a.mu.RUnlock()
	if ok && p.ns == ns {
		return p.data, nil
	}
	// An id made for its record's name carries the name's tag: try the
	// exact subjects of the names with that tag first. A wildcard over the
	// action token costs the server a scan of the record's block when the
	// block is not cached: ~25 µs for an exact subject against up to tens
	// of ms at 1M records.
	if tag, ok := gust.ActivationIDTag(id); ok && a.names != nil {
		for _, name := range a.names.RecordNames(ns, tag) {
			msg, err := a.direct(ctx, `{"last_by_subj":"`+activationSubject(ns, name, id)+`"}`)
			if err != nil {
				return nil, err
			}
			if msg != nil {
				return msg.Data, nil
			}
		}
	}
	msg, err := a.direct(ctx, fmt.Sprintf(`{"last_by_subj":"act.%s.*.%s"}`, token(ns), id))
	if err != nil {
		return nil, err
	}
	if msg == nil {
		return nil, gust.ErrNotFound
	}
	return msg.Data, nil
}

// RecordNamer knows under which names records of a namespace may be
// stored, by the tag in their ids (Entities is one).
type RecordNamer interface {
	RecordNames(ns string, tag uint16) []string
}

// SetRecordNamer makes Get look records up by exact subject first. Call it
// before the store is used.
func (a *Activations) SetRecordNamer(n RecordNamer) { a.names = n }

// direct sends one direct-get request and returns the message, or nil when
// there is none.
func (a *Activations) direct(ctx context.Context, req string) (*nats.Msg, error) {
	msg, err := a.nc.RequestWithContext(ctx, a.prefix, []byte(req))
	if err != nil {
		return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("direct get: %w", err))
	}
	if st := msg.Header.Get("Status"); st != "" {
		if st == "404" || st == "408" {
			return nil, nil
		}
		return nil, gust.Wrap(gust.KindInternal, "activation store error", fmt.Errorf("direct get: status %s %s", st, msg.Header.Get("Description")))
	}
	return msg, nil
}

// ListOptions filter and page an activation list.
type ListOptions struct {
	Name  string // "[pkg/]action"; empty for all
	Since int64  // epoch ms, inclusive, on start; 0 for none
	Upto  int64  // epoch ms, inclusive, on start; 0 for none
	Skip  int
	Limit int
}

// Record is what List returns per activation.
type ListedActivation struct {
	Seq  uint64
	Data json.RawMessage
	Act  *gust.Activation
}

// maxRunSlack bounds how long after its start a record can be stored
// (the longest action timeout plus generous headroom for a slow writer), for pruning by time.
const maxRunSlack = 15 * time.Minute

// List returns the activations of namespace ns matching opt, newest first.
//
// It walks the stream backwards in windows that grow ×4 from the newest
// matching record, stepping forward through each window with single
// next-by-subject direct gets. Unlike batch gets it makes the server count
// nothing, so a page costs ~tens of µs per record at any stream size (see
// shared/reference/nats.md §3).
func (a *Activations) List(ctx context.Context, ns string, opt ListOptions) ([]ListedActivation, error) {
	filter := "act." + token(ns) + ".>"
	if opt.Name != "" {
		filter = "act." + token(ns) + "." + token(opt.Name) + ".*"
	}
	want := opt.Skip + opt.Limit
	if want <= 0 {
		return nil, nil
	}
	// Records not yet acknowledged are the newest of all. They are read
	// before the stream: a record acknowledged after this snapshot is in
	// it, and one acknowledged before is in the stream at or below the
	// newest sequence read next. The other way round, a record
	// acknowledged in between would be in neither.
	pend := a.pendingMatches(ns, opt)
	seen := make(map[string]bool, len(pend))
	var out []ListedActivation
	matched := 0
	for _, l := range pend {
		seen[l.Act.ActivationID] = true
		if matched >= opt.Skip && matched < want {
			out = append(out, l)
		}
		matched++
	}
	// The stream's last sequence bounds the walk from above. (The newest
	// match, a wildcard last_by_subj, would be tighter but costs the
	// server time linear in the subjects matched: 13 ms at 100k records.)
	hi, err := a.lastSeq(ctx)
	if err != nil {
		return nil, err
	}
	if opt.Upto > 0 {
		// Records are stored when they end; one that started at upto was
		// stored at most maxRunSlack later.
		t := time.UnixMilli(opt.Upto).Add(maxRunSlack).UTC().Format(time.RFC3339Nano)
		if m, err := a.direct(ctx, `{"start_time":"`+t+`"}`); err != nil {
			return nil, err
		} else if m != nil {
			if s, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64); s > 0 && s-1 < hi {
				hi = s - 1
			}
		}
	}
	window := uint64(64)
	for hi > 0 && matched < want {
		lo := uint64(1)
		if hi > window {
			lo = hi - window + 1
		}
		found, stop, err := a.scan(ctx, filter, lo, hi, opt)
		if err != nil {
			return nil, err
		}
		for i := len(found) - 1; i >= 0 && matched < want; i-- {
			if seen[found[i].Act.ActivationID] {
				continue
			}
			if matched >= opt.Skip {
				out = append(out, found[i])
			}
			matched++
		}
		if stop || lo == 1 {
			break
		}
		hi = lo - 1
		if window < 1<<20 {
			window *= 4
		}
	}
	return out, nil
}

// lastSeq returns the sequence of the newest record in the stream (0 when
// it is empty), from the stream's info: constant time at any size.
func (a *Activations) lastSeq(ctx context.Context) (uint64, error) {
	info, err := a.stream.Info(ctx)
	if err != nil {
		return 0, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, fmt.Errorf("stream info: %w", err))
	}
	return info.State.LastSeq, nil
}

// pendingMatches returns every unacknowledged record matching opt, newest
// (last queued) first.
func (a *Activations) pendingMatches(ns string, opt ListOptions) []ListedActivation {
	type match struct {
		p   pending
		act *gust.Activation
	}
	var found []match
	a.mu.RLock()
	for _, p := range a.pending {
		if p.ns != ns || (opt.Name != "" && p.name != opt.Name) {
			continue
		}
		var act gust.Activation
		if json.Unmarshal(p.data, &act) != nil {
			continue
		}
		if (opt.Since > 0 && act.Start < opt.Since) || (opt.Upto > 0 && act.Start > opt.Upto) {
			continue
		}
		found = append(found, match{p, &act})
	}
	a.mu.RUnlock()
	sort.Slice(found, func(i, j int) bool { return found[i].p.order > found[j].p.order })
	out := make([]ListedActivation, len(found))
	for i, f := range found {
		out[i] = ListedActivation{Data: f.p.data, Act: f.act}
	}
	return out
}

// scan steps forward through [lo, hi] collecting matches in sequence order.
// stop reports that the window reached records stored before opt.Since.
func (a *Activations) scan(ctx context.Context, filter string, lo, hi uint64, opt ListOptions) (found []ListedActivation, stop bool, err error) {
	for s := lo; s <= hi; {
		m, err := a.direct(ctx, `{"seq":`+strconv.FormatUint(s, 10)+`,"next_by_subj":"`+filter+`"}`)
		if err != nil {
			return nil, false, err
		}
		if m == nil {
			break
		}
		seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if seq == 0 || seq > hi {
			break
		}
		s = seq + 1
		if opt.Since > 0 {
			// A record is stored after it starts: one stored before since
			// started before it, and so did everything older.
			if ts, err := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp")); err == nil && ts.UnixMilli() < opt.Since {
				stop = true
				continue
			}
		}
		var act gust.Activation
		if err := json.Unmarshal(m.Data, &act); err != nil {
			a.log.Warn("skip undecodable activation", "seq", seq, "err", err)
			continue
		}
		if (opt.Since > 0 && act.Start < opt.Since) || (opt.Upto > 0 && act.Start > opt.Upto) {
			continue
		}
		found = append(found, ListedActivation{Seq: seq, Data: m.Data, Act: &act})
	}
	return found, stop, nil
}

// Count returns how many records of ns (and opt.Name) are retained,
// honouring Since and Upto.
func (a *Activations) Count(ctx context.Context, ns string, opt ListOptions) (int, error) {
	if opt.Since == 0 && opt.Upto == 0 {
		// The server counts only what it stored: let the records queued
		// before this call reach it first.
		if err := a.waitWritten(ctx, ns, opt.Name); err != nil {
			return 0, err
		}
		filter := "act." + token(ns) + ".>"
		if opt.Name != "" {
			filter = "act." + token(ns) + "." + token(opt.Name) + ".*"
		}
		return a.countAll(ctx, filter)
	}
	opt.Skip, opt.Limit = 0, 100_000
	list, err := a.List(ctx, ns, opt)
	return len(list), err
}

// waitWritten waits until the records of ns (and name, when set) queued
// before the call have been written or given up on.
func (a *Activations) waitWritten(ctx context.Context, ns, name string) error {
	a.mu.RLock()
	var ids []string
	for id, p := range a.pending {
		if p.ns == ns && (name == "" || p.name == name) {
			ids = append(ids, id)
		}
	}
	a.mu.RUnlock()
	for len(ids) > 0 {
		a.mu.RLock()
		for len(ids) > 0 {
			if _, ok := a.pending[ids[len(ids)-1]]; ok {
				break
			}
			ids = ids[:len(ids)-1]
		}
		written := a.written
		a.mu.RUnlock()
		if len(ids) == 0 {
			break
		}
		select {
		case <-written:
		case <-ctx.Done():
			return gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, ctx.Err())
		}
	}
	return nil
}

// countAll reads the server's count of pending matches from the first
// record: one batch request of size 1.
func (a *Activations) countAll(ctx context.Context, filter string) (int, error) {
	inbox := a.nc.NewRespInbox()
	sub, err := a.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	req := `{"seq":1,"next_by_subj":"` + filter + `","batch":1}`
	if err := a.nc.PublishRequest(a.prefix, inbox, []byte(req)); err != nil {
		return 0, err
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return 0, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, err)
	}
	if st := m.Header.Get("Status"); st != "" {
		return 0, nil // 404: no match
	}
	n, _ := strconv.Atoi(m.Header.Get("Nats-Num-Pending"))
	return n + 1, nil
}
