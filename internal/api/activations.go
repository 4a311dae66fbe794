package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// activationSummary is an entry of an activation list without docs=true:
// statusCode (0..3) sits at the top level and result and logs are left out.
type activationSummary struct {
	Namespace    string         `json:"namespace"`
	Name         string         `json:"name"`
	Version      string         `json:"version"`
	Publish      bool           `json:"publish"`
	Annotations  gust.KeyValues `json:"annotations"`
	ActivationID string         `json:"activationId"`
	Start        int64          `json:"start"`
	End          int64          `json:"end,omitempty"`
	Duration     *int64         `json:"duration,omitempty"` // with end: 0 is a duration too
	Cause        string         `json:"cause,omitempty"`
	StatusCode   gust.Status    `json:"statusCode"`
}

func msParam(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, gust.Errorf(gust.KindInvalid, "The value '%s' is not a valid time in epoch milliseconds for '%s'.", v, name)
	}
	return n, nil
}

// activationList is a parsed activation list query.
type activationList struct {
	page page
	docs bool
	opt  store.ListOptions
}

// activationQuery reads an activation list's query: limit, skip, count,
// docs, since, upto and name, with OpenWhisk's messages.
func activationQuery(q url.Values) (activationList, error) {
	var aq activationList
	var err error
	if aq.page, err = pageParams(q, "activations"); err != nil {
		return aq, err
	}
	if aq.docs, err = boolParam(q, "docs", false); err != nil {
		return aq, err
	}
	if aq.docs && aq.page.count {
		return aq, gust.Errorf(gust.KindInvalid, "The parameter 'docs' is not permitted with 'count'.")
	}
	aq.opt = store.ListOptions{Skip: aq.page.skip, Limit: aq.page.limit}
	if aq.opt.Since, err = msParam(q.Get("since"), "since"); err != nil {
		return aq, err
	}
	if aq.opt.Upto, err = msParam(q.Get("upto"), "upto"); err != nil {
		return aq, err
	}
	if name := q.Get("name"); name != "" {
		parts := strings.Split(name, "/")
		if len(parts) > 2 {
			return aq, gust.Errorf(gust.KindInvalid, "The name '%s' is not valid: give an action name or package/action.", name)
		}
		for _, part := range parts {
			if err := gust.ValidateName("action", part); err != nil {
				return aq, err
			}
		}
		aq.opt.Name = name
	}
	return aq, nil
}

func (s *Server) listActivations(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	aq, err := activationQuery(r.URL.Query())
	if err != nil {
		return err
	}
	pg, docs, opt := aq.page, aq.docs, aq.opt
	if pg.count {
		n, err := s.cfg.Activations.Count(r.Context(), ns, opt)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]int{"activations": n})
	}
	list, err := s.cfg.Activations.List(r.Context(), ns, opt)
	if err != nil {
		return err
	}
	if docs {
		raws := make([]json.RawMessage, len(list))
		for i, l := range list {
			raws[i] = l.Data
		}
		return writeJSON(w, http.StatusOK, raws)
	}
	out := make([]activationSummary, len(list))
	for i, l := range list {
		a := l.Act
		out[i] = activationSummary{Namespace: a.Namespace, Name: a.Name, Version: a.Version, Publish: a.Publish,
			Annotations: a.Annotations, ActivationID: a.ActivationID, Start: a.Start, End: a.End,
			Cause: a.Cause, StatusCode: a.Response.StatusCode}
		if a.End != 0 {
			out[i].Duration = &a.Duration
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// getActivation serves {id}, {id}/logs and {id}/result.
func (s *Server) getActivation(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	actID, part, _ := strings.Cut(r.PathValue("rest"), "/")
	if part != "" && part != "logs" && part != "result" {
		return gust.ErrNotFound
	}
	if err := gust.ValidateActivationID(actID); err != nil {
		return err
	}
	raw, err := s.cfg.Activations.Get(r.Context(), ns, actID)
	if err != nil {
		return err
	}
	switch part {
	case "":
		return writeRaw(w, http.StatusOK, raw)
	case "logs":
		var v struct {
			Logs []string `json:"logs"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if v.Logs == nil {
			v.Logs = []string{}
		}
		return writeJSON(w, http.StatusOK, v)
	default:
		var v struct {
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		return writeRaw(w, http.StatusOK, v.Response)
	}
}
