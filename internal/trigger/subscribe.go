package trigger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// The subscription feeds fire a trigger for each message on a NATS subject
// (/whisk.system/nats/subscribe, parameter subject) or MQTT topic
// (/whisk.system/mqtt/subscribe, parameter topic; devices publish to the
// embedded server's MQTT listener). The trigger gets the message: a JSON
// object's members, or {"payload": text} (base64 with "encoding":
// "base64" when the bytes are not UTF-8), plus "subject" or "topic".
// Subjects and topics are scoped by namespace: their first token or level
// is the namespace's name (see NamespaceRoot).

// Subscription feed names.
const (
	feedNATS = "nats/subscribe"
	feedMQTT = "mqtt/subscribe"
)

type subscribeConfig struct {
	Subject string `json:"subject,omitempty"`
	Topic   string `json:"topic,omitempty"`
}

var subscribeProvider = &provider{
	configure: func(feed, ns string, p params, old json.RawMessage, _ time.Time) (json.RawMessage, error) {
		name := "subject"
		if feed == feedMQTT {
			name = "topic"
		}
		raw, ok := p[name]
		if !ok {
			if old != nil {
				return nil, feedError("no updatable parameters were specified")
			}
			return nil, feedError("%s trigger feed is missing the %s parameter", strings.Split(feed, "/")[0], name)
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v == "" {
			return nil, feedError("the %s parameter must be a non-empty string", name)
		}
		root, err := NamespaceRoot(ns)
		if err != nil {
			return nil, feedError("%v", err)
		}
		var c subscribeConfig
		if feed == feedMQTT {
			subject, err := TopicToSubject(v, true)
			if err != nil {
				return nil, feedError("topic parameter '%s' is not a valid MQTT topic filter: %v", v, err)
			}
			if !scoped(subject, root) {
				return nil, feedError("topic parameter '%s' must start with the namespace: %s/…", v, ns)
			}
			c.Topic = v
		} else {
			if !ValidSubject(v, true) {
				return nil, feedError("subject parameter '%s' is not a valid NATS subject", v)
			}
			if !scoped(v, root) {
				return nil, feedError("subject parameter '%s' must start with the namespace: %s.…", v, root)
			}
			c.Subject = v
		}
		return json.Marshal(c)
	},
	read: func(_ string, raw json.RawMessage) map[string]any {
		var c subscribeConfig
		_ = json.Unmarshal(raw, &c) // written by configure
		if c.Topic != "" {
			return map[string]any{"topic": c.Topic}
		}
		return map[string]any{"subject": c.Subject}
	},
}

// subjects returns what a subscription feed listens to. An MQTT filter
// ending in /# also matches its parent level, as in MQTT.
func (c subscribeConfig) subjects() []string {
	if c.Topic == "" {
		return []string{c.Subject}
	}
	s, err := TopicToSubject(c.Topic, true)
	if err != nil {
		return nil
	}
	if parent, ok := strings.CutSuffix(s, ".>"); ok {
		return []string{s, parent}
	}
	return []string{s}
}

// subscription is a running subscription feed.
type subscription struct {
	created  int64
	subjects []string
	subs     []*nats.Subscription
}

func (s *subscription) stop() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// defaultSubscribeFlush bounds the round trip that confirms a
// subscription on the server.
const defaultSubscribeFlush = 5 * time.Second

// lastingError is a subscription failure that trying again cannot mend
// (no connection configured, a configuration without a subject).
type lastingError struct{ error }

func (e lastingError) Unwrap() error { return e.error }

// retryable reports whether a failed subscription may start when tried
// again: a connection down or slow, not closed for good. (A flush cut
// short by a reconnect also says ErrConnectionClosed: the connection's
// state tells.)
func (f *Feeds) retryable(err error) bool {
	var l lastingError
	return !errors.As(err, &l) && f.cfg.Conn != nil && !f.cfg.Conn.IsClosed()
}

// syncSubscription starts, restarts or stops the subscription of feed key
// after a registration change (rec nil: deleted). It returns once a new
// subscription is registered on the server (flushed), or why it is not.
// Only the watch (follow) calls it, so f.subs changes nowhere else
// meanwhile; the lock guards readers. A failure leaves no subscription:
// follow tries again.
func (f *Feeds) syncSubscription(ctx context.Context, key string, rec *store.Feed) error {
	var c subscribeConfig
	isSub := rec != nil && rec.Active && subscribes(rec.Feed)
	want := isSub && f.cfg.Conn != nil && json.Unmarshal(rec.Config, &c) == nil
	var subjects []string
	f.mu.Lock()
	cur, flush := f.subs[key], f.subscribeFlush
	if want {
		subjects = c.subjects()
		if cur != nil && cur.created == rec.Created && slices.Equal(cur.subjects, subjects) {
			f.mu.Unlock()
			return nil
		}
	}
	if cur != nil {
		cur.stop()
		delete(f.subs, key)
	}
	f.mu.Unlock()
	switch {
	case isSub && f.cfg.Conn == nil:
		return lastingError{fmt.Errorf("this node has no NATS connection")}
	case !want:
		return nil
	case len(subjects) == 0:
		return lastingError{fmt.Errorf("stored configuration %s has no subject", rec.Config)}
	}
	// One queue group per feed across the cluster: each message fires the
	// trigger once, whichever node takes it.
	sum := sha256.Sum256([]byte(key))
	queue := "gustfeed" + hex.EncodeToString(sum[:8])
	sub := &subscription{created: rec.Created, subjects: subjects}
	feed := *rec
	for _, subject := range subjects {
		s, err := f.cfg.Conn.QueueSubscribe(subject, queue, func(m *nats.Msg) { f.onMessage(ctx, &feed, m) })
		if err != nil {
			sub.stop()
			return fmt.Errorf("subscribe to %s: %w", subject, err)
		}
		sub.subs = append(sub.subs, s)
	}
	// Subscribe only queues the request: until the server has it, a
	// message published elsewhere (an MQTT device, a client over TCP) is
	// not delivered. The round trip confirms it.
	if err := f.cfg.Conn.FlushTimeout(flush); err != nil {
		sub.stop()
		return fmt.Errorf("confirm subscription to %v: %w", subjects, err)
	}
	f.mu.Lock()
	f.subs[key] = sub
	f.mu.Unlock()
	return nil
}

// onMessage fires the feed's trigger with one message.
func (f *Feeds) onMessage(ctx context.Context, rec *store.Feed, m *nats.Msg) {
	extra, value := "subject", m.Subject
	if rec.Feed == feedMQTT {
		extra, value = "topic", SubjectToTopic(m.Subject)
	}
	payload, err := messageParams(m.Data, extra, value)
	if err != nil {
		f.log.Warn("feed message dropped", "feed", rec.Key(), "err", err)
		return
	}
	caller, ok := f.cfg.Keys.ByNamespace(rec.Namespace)
	if !ok {
		f.deactivate(ctx, rec, "the namespace no longer exists")
		return
	}
	_, err = f.fires.Fire(ctx, Fire{Caller: caller, Trigger: gust.Path{Namespace: rec.Namespace, Name: rec.Trigger}, Payload: payload})
	switch k := gust.KindOf(err); {
	case err == nil:
	case k == gust.KindNotFound || k == gust.KindForbidden:
		f.deactivate(ctx, rec, "the trigger no longer exists")
	default:
		// A subscription delivers at most once: a message that could not
		// fire (throttled, too large, store down) is dropped, and said so.
		f.log.Warn("feed message dropped", "feed", rec.Key(), "subject", m.Subject, "err", err)
	}
}

// messageParams renders a message as trigger parameters.
func messageParams(data []byte, key, value string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &obj) != nil || obj == nil {
		obj = map[string]json.RawMessage{}
		var text []byte
		var err error
		if utf8.Valid(data) {
			text, err = json.Marshal(string(data))
		} else {
			text, err = json.Marshal(base64.StdEncoding.EncodeToString(data))
			obj["encoding"] = json.RawMessage(`"base64"`)
		}
		if err != nil {
			return nil, fmt.Errorf("message payload: %w", err)
		}
		obj["payload"] = text
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[key] = v // the platform's value wins over a member of the same name
	return json.Marshal(obj)
}
