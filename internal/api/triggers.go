package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
	"github.com/gust-faas/gust/internal/trigger"
)

// Firer fires triggers (trigger.Firer).
type Firer interface {
	Fire(ctx context.Context, f trigger.Fire) (string, error)
}

// triggerPut is the body of PUT .../triggers/{name}; absent fields keep
// their value on update. Clients also send name, namespace, limits and
// rules, which are ignored: a trigger's rules are written by rules.
type triggerPut struct {
	Parameters *gust.KeyValues `json:"parameters"`
	entityMeta
}

// triggerSummary is an entry of a trigger list.
type triggerSummary struct {
	Namespace   string         `json:"namespace"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Publish     bool           `json:"publish"`
	Annotations gust.KeyValues `json:"annotations"`
	Updated     int64          `json:"updated"`
}

func (s *Server) getTrigger(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	_, rec, err := s.namedRecord(r, id, store.TypeTrigger)
	if err != nil {
		return err
	}
	t, err := rec.Trigger()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) listTriggers(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	pg, err := pageParams(r.URL.Query(), "triggers")
	if err != nil {
		return err
	}
	recs := s.cfg.Entities.List(ns, store.TypeTrigger, "", false)
	if pg.count {
		return writeJSON(w, http.StatusOK, map[string]int{"triggers": len(recs)})
	}
	out := make([]triggerSummary, 0, min(pg.limit, len(recs)))
	for i := pg.skip; i < len(recs) && len(out) < pg.limit; i++ {
		t, err := recs[i].Trigger()
		if err != nil {
			return err
		}
		sum := triggerSummary{Namespace: t.Namespace, Name: t.Name, Version: t.Version, Publish: t.Publish,
			Annotations: t.Annotations, Updated: t.Updated}
		if sum.Annotations == nil {
			sum.Annotations = gust.KeyValues{}
		}
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) putTrigger(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, err := namedPath(r, id, store.TypeTrigger)
	if err != nil {
		return err
	}
	var in triggerPut
	overwrite, err := s.putBody(w, r, &in)
	if err != nil {
		return err
	}
	old, err := s.replaced(p, store.TypeTrigger, overwrite)
	if err != nil {
		return err
	}
	var t gust.Trigger
	var rev uint64
	if old != nil {
		cur, err := old.Trigger()
		if err != nil {
			return err
		}
		t, rev = *cur, old.Revision
		t.Version = gust.BumpVersion(cur.Version)
	} else {
		t = gust.Trigger{Version: "0.0.1", Parameters: gust.KeyValues{}, Annotations: gust.KeyValues{}}
	}
	t.Namespace, t.Name = p.Namespace, p.Name
	if in.Parameters != nil {
		if err := s.checkParams(*in.Parameters); err != nil {
			return err
		}
		t.Parameters = *in.Parameters
	}
	if in.Annotations != nil {
		if err := checkFeedAnnotation(*in.Annotations); err != nil {
			return err
		}
	}
	if err := s.applyMeta(in.entityMeta, &t.Annotations, &t.Version, &t.Publish); err != nil {
		return err
	}
	t.Updated = s.now().UnixMilli()
	if err := s.putEntity(r.Context(), p, store.TypeTrigger, t, t.Updated, rev); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

// checkFeedAnnotation checks that a feed annotation names an action by a
// fully qualified name, as OpenWhisk does.
func checkFeedAnnotation(kv gust.KeyValues) error {
	raw, ok := kv.Get("feed")
	if !ok {
		return nil
	}
	var name string
	if err := decodeJSON(raw, &name); err != nil || !strings.HasPrefix(name, "/") {
		return gust.Errorf(gust.KindInvalid, "Feed name is not valid")
	}
	if _, err := gust.ParsePath(name, "_"); err != nil {
		return gust.Errorf(gust.KindInvalid, "Feed name is not valid")
	}
	return nil
}

func (s *Server) deleteTrigger(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, rec, err := s.namedRecord(r, id, store.TypeTrigger)
	if err != nil {
		return err
	}
	t, err := rec.Trigger()
	if err != nil {
		return err
	}
	// Its rules stay, inactive, as in OpenWhisk; a feed is the client's to
	// delete (the CLI invokes the feed action with DELETE).
	if err := s.cfg.Entities.Delete(r.Context(), p, rec.Revision); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

// fireTrigger answers POST .../triggers/{name}: 202 with the trigger
// activation's id, or 204 when no rule is active.
func (s *Server) fireTrigger(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, err := namedPath(r, id, store.TypeTrigger)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.cfg.Limits.MaxPayloadSize)
	if err != nil {
		return err
	}
	return s.fire(w, r, id, p, body)
}

// fire fires p with payload on behalf of id and writes the answer.
func (s *Server) fire(w http.ResponseWriter, r *http.Request, id *store.Identity, p gust.Path, payload []byte) error {
	if s.cfg.Triggers == nil {
		return gust.Errorf(gust.KindUnavailable, gust.MsgUnavailable)
	}
	actID, err := s.cfg.Triggers.Fire(r.Context(), trigger.Fire{Caller: id, Trigger: p, Payload: payload, Headers: fireHeaders(r.Header)})
	if err != nil {
		return err
	}
	if actID == "" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("x-openwhisk-activation-id", actID)
	return writeJSON(w, http.StatusAccepted, map[string]string{"activationId": actID})
}

// fireHeaders are the headers passed to rules' actions as __ow_headers:
// lowercase names, the first value of each. Credentials are left out: the
// caller's key has no business in an action's arguments (nor in logs that
// print them).
func fireHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		k = strings.ToLower(k)
		if k == "authorization" || k == "cookie" || len(v) == 0 {
			continue
		}
		out[k] = v[0]
	}
	return out
}

// fireCloudEvent answers POST .../triggers/{name}/cloudevents: a CloudEvent
// in the HTTP binding's structured or binary mode fires the trigger with
// its attributes and data as parameters. It lives under the trigger it
// fires, so authentication and entitlement are the trigger's.
func (s *Server) fireCloudEvent(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, err := namedPath(r, id, store.TypeTrigger)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.cfg.Limits.MaxPayloadSize)
	if err != nil {
		return err
	}
	params, err := trigger.ParseCloudEvent(r.Header, body)
	if err != nil {
		return err
	}
	return s.fire(w, r, id, p, params)
}
