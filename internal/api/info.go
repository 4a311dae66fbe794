package api

import (
	"net/http"

	"github.com/gust-faas/gust/internal/store"
)

func (s *Server) apiInfo(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"description":      "OpenWhisk API",
		"api_version":      "1.0.0",
		"api_version_path": "v1",
		"build":            s.cfg.Build,
		"buildno":          s.cfg.Build,
		"swagger_paths":    map[string]string{"ui": "/docs", "api-docs": "/api-docs"},
		"runtimes":         s.runtimes(),
	})
}

// runtimes lists the kinds this node knows in the manifest shape of
// OpenWhisk's GET / ("runtimes": {family: [{kind, default}]}), with the
// interpreter each uses and, for a kind that cannot run here, why.
func (s *Server) runtimes() map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, rt := range s.cfg.Runtimes.Runtimes() {
		fam := family(rt.Kind)
		def := rt.Available
		for _, other := range out[fam] {
			if other["default"] == true {
				def = false
			}
		}
		entry := map[string]any{"kind": rt.Kind, "default": def, "available": rt.Available}
		if rt.Interpreter != "" {
			entry["interpreter"] = rt.Interpreter
		}
		if rt.Reason != "" {
			entry["reason"] = rt.Reason
		}
		out[fam] = append(out[fam], entry)
	}
	return out
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	l := s.cfg.Limits
	return writeJSON(w, http.StatusOK, map[string]any{
		"description": "Gust, a self-hosted serverless platform with OpenWhisk's API",
		"support":     map[string]string{"github": "https://github.com/gust-faas/gust"},
		"api_paths":   []string{"/api/v1"},
		"limits": map[string]any{
			"actions_per_minute":  l.InvocationsPerMinute,
			"triggers_per_minute": l.FiresPerMinute,
			"concurrent_actions":  l.ConcurrentInvocations,
			"sequence_length":     l.SequenceMaxLength,
			"min_action_duration": l.MinActionTimeout,
			"max_action_duration": l.MaxActionTimeout,
			"min_action_memory":   l.MinActionMemory << 20,
			"max_action_memory":   l.MaxActionMemory << 20,
			"min_action_logs":     l.MinActionLogs << 20,
			"max_action_logs":     l.MaxActionLogs << 20,
		},
		"runtimes": s.runtimes(),
	})
}

func (s *Server) listNamespaces(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	return writeJSON(w, http.StatusOK, []string{id.Namespace})
}

func (s *Server) getLimits(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if _, err := namespace(r, id); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, id.Effective(s.cfg.Limits))
}
