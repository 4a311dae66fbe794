package api

import (
	"context"
	"net/http"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// rulePut is the body of PUT .../rules/{name}. Trigger and action are
// names as strings or {path, name} objects; the CLI also sends name and
// status, which are ignored.
type rulePut struct {
	Trigger *gust.NameRef `json:"trigger"`
	Action  *gust.NameRef `json:"action"`
	entityMeta
}

// ruleState is the body of POST .../rules/{name}.
type ruleState struct {
	Status string `json:"status"`
}

// ruleKey is a rule's key in its trigger's rules map: "ns/name".
func ruleKey(p gust.Path) string { return p.Namespace + "/" + p.Name }

// ruleStatus reads a rule's status from its trigger: inactive when the
// trigger is gone or does not list the rule.
func (s *Server) ruleStatus(x *gust.Rule) string {
	tp, err := x.Trigger.FullPath()
	if err != nil {
		return gust.RuleInactive
	}
	rec, err := s.cfg.Entities.GetType(tp, store.TypeTrigger)
	if err != nil {
		return gust.RuleInactive
	}
	t, err := rec.Trigger()
	if err != nil {
		return gust.RuleInactive
	}
	if rr, ok := t.Rules[ruleKey(x.Path())]; ok && rr.Status == gust.RuleActive {
		return gust.RuleActive
	}
	return gust.RuleInactive
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	_, rec, err := s.namedRecord(r, id, store.TypeRule)
	if err != nil {
		return err
	}
	x, err := rec.Rule()
	if err != nil {
		return err
	}
	x.Status = s.ruleStatus(x)
	return writeJSON(w, http.StatusOK, x)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	pg, err := pageParams(r.URL.Query(), "rules")
	if err != nil {
		return err
	}
	recs := s.cfg.Entities.List(ns, store.TypeRule, "", false)
	if pg.count {
		return writeJSON(w, http.StatusOK, map[string]int{"rules": len(recs)})
	}
	// Entries are the stored rules, without status (OpenWhisk's list view;
	// the CLI gets each rule for it).
	out := make([]*gust.Rule, 0, min(pg.limit, len(recs)))
	for i := pg.skip; i < len(recs) && len(out) < pg.limit; i++ {
		x, err := recs[i].Rule()
		if err != nil {
			return err
		}
		x.Status = ""
		out = append(out, x)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) putRule(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, err := namedPath(r, id, store.TypeRule)
	if err != nil {
		return err
	}
	var in rulePut
	overwrite, err := s.putBody(w, r, &in)
	if err != nil {
		return err
	}
	old, err := s.replaced(p, store.TypeRule, overwrite)
	if err != nil {
		return err
	}
	var x gust.Rule
	var rev uint64
	var oldTrigger *gust.Path
	if old != nil {
		cur, err := old.Rule()
		if err != nil {
			return err
		}
		x, rev = *cur, old.Revision
		x.Version = gust.BumpVersion(cur.Version)
		if tp, err := cur.Trigger.FullPath(); err == nil {
			oldTrigger = &tp
		}
	} else {
		if in.Trigger == nil || in.Action == nil || *in.Trigger == "" || *in.Action == "" {
			return gust.Errorf(gust.KindInvalid, "The request content was malformed:\na rule needs a trigger and an action.")
		}
		x = gust.Rule{Version: "0.0.1", Annotations: gust.KeyValues{}}
	}
	x.Namespace, x.Name, x.Status = p.Namespace, p.Name, ""
	if in.Trigger != nil && *in.Trigger != "" {
		tp, err := s.ruleTrigger(string(*in.Trigger), id.Namespace)
		if err != nil {
			return err
		}
		x.Trigger = gust.RefOf(tp)
	}
	if in.Action != nil && *in.Action != "" {
		ap, err := s.ruleAction(string(*in.Action), id.Namespace)
		if err != nil {
			return err
		}
		x.Action = gust.RefOf(ap)
	}
	if err := s.applyMeta(in.entityMeta, &x.Annotations, &x.Version, &x.Publish); err != nil {
		return err
	}
	x.Updated = s.now().UnixMilli()

	// An updated rule keeps its state; a new one starts active.
	status := gust.RuleActive
	if old != nil {
		if cur, err := old.Rule(); err == nil {
			status = s.ruleStatus(cur)
		}
	}
	if err := s.putEntity(r.Context(), p, store.TypeRule, x, x.Updated, rev); err != nil {
		return err
	}
	tp, _ := x.Trigger.FullPath()
	if oldTrigger != nil && *oldTrigger != tp {
		if err := s.setTriggerRule(r.Context(), *oldTrigger, p, nil); err != nil && gust.KindOf(err) != gust.KindNotFound {
			return err
		}
	}
	err = s.setTriggerRule(r.Context(), tp, p, &gust.ReducedRule{Action: x.Action, Status: status})
	if err != nil {
		if old == nil {
			// The trigger is what makes a rule work: do not leave one that
			// no trigger knows of.
			if rec, gerr := s.cfg.Entities.GetType(p, store.TypeRule); gerr == nil {
				_ = s.cfg.Entities.Delete(context.WithoutCancel(r.Context()), p, rec.Revision)
			}
		}
		return err
	}
	x.Status = status
	return writeJSON(w, http.StatusOK, x)
}

// ruleTrigger resolves a rule's trigger name: a trigger of the caller's own
// namespace that exists.
func (s *Server) ruleTrigger(name, caller string) (gust.Path, error) {
	tp, err := gust.ParsePath(name, caller)
	if err != nil {
		return tp, err
	}
	if tp.Package != "" {
		return tp, gust.Errorf(gust.KindInvalid, "The request content was malformed:\na trigger is not in a package: %s", name)
	}
	if tp.Namespace != caller {
		return tp, gust.Forbidden(tp.String())
	}
	if _, err := s.cfg.Entities.GetType(tp, store.TypeTrigger); err != nil {
		return tp, gust.Errorf(gust.KindInvalid, "trigger %s does not exist", tp)
	}
	return tp, nil
}

// ruleAction resolves a rule's action name: one the caller may invoke
// (its own, or in a published package, possibly through a binding).
func (s *Server) ruleAction(name, caller string) (gust.Path, error) {
	ap, err := gust.ParsePath(name, caller)
	if err != nil {
		return ap, err
	}
	if _, err := s.cfg.Entities.ResolveAction(ap, caller); err != nil {
		if gust.KindOf(err) == gust.KindForbidden {
			return ap, err
		}
		return ap, gust.Errorf(gust.KindInvalid, "action %s does not exist", ap)
	}
	return ap, nil
}

// setTriggerRule writes (or with rr nil, removes) rule's entry in the rules
// map of trigger tp, retrying when another write to the trigger came
// first.
func (s *Server) setTriggerRule(ctx context.Context, tp, rule gust.Path, rr *gust.ReducedRule) error {
	for attempt := 0; ; attempt++ {
		rec, err := s.cfg.Entities.GetType(tp, store.TypeTrigger)
		if err != nil {
			return err
		}
		t, err := rec.Trigger()
		if err != nil {
			return err
		}
		key := ruleKey(rule)
		if rr == nil {
			if _, ok := t.Rules[key]; !ok {
				return nil
			}
			delete(t.Rules, key)
		} else {
			if t.Rules == nil {
				t.Rules = map[string]gust.ReducedRule{}
			}
			t.Rules[key] = *rr
		}
		err = s.putEntity(ctx, tp, store.TypeTrigger, t, rec.Updated, rec.Revision)
		if err == nil || gust.KindOf(err) != gust.KindConflict || attempt >= 10 {
			return err
		}
	}
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, rec, err := s.namedRecord(r, id, store.TypeRule)
	if err != nil {
		return err
	}
	x, err := rec.Rule()
	if err != nil {
		return err
	}
	x.Status = s.ruleStatus(x)
	if err := s.cfg.Entities.Delete(r.Context(), p, rec.Revision); err != nil {
		return err
	}
	// Deleting works in any state; the trigger forgets the rule.
	if tp, err := x.Trigger.FullPath(); err == nil {
		if err := s.setTriggerRule(r.Context(), tp, p, nil); err != nil && gust.KindOf(err) != gust.KindNotFound {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, x)
}

// setRuleState answers POST .../rules/{name} {"status": "active"|"inactive"}.
func (s *Server) setRuleState(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	p, err := namedPath(r, id, store.TypeRule)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.cfg.Limits.MaxBodySize)
	if err != nil {
		return err
	}
	var in ruleState
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	if in.Status != gust.RuleActive && in.Status != gust.RuleInactive {
		return gust.Errorf(gust.KindInvalid, "The request content was malformed:\nstatus must be 'active' or 'inactive'.")
	}
	rec, err := s.cfg.Entities.GetType(p, store.TypeRule)
	if err != nil {
		return err
	}
	x, err := rec.Rule()
	if err != nil {
		return err
	}
	tp, err := x.Trigger.FullPath()
	if err != nil {
		return err
	}
	err = s.setTriggerRule(r.Context(), tp, p, &gust.ReducedRule{Action: x.Action, Status: in.Status})
	if gust.KindOf(err) == gust.KindNotFound {
		return gust.Errorf(gust.KindInvalid, "trigger %s does not exist", tp)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
