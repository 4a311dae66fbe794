package api

import (
	"net/http"
	"sort"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Administration of namespaces and their limits, a Gust extension of the
// OpenWhisk API (OpenWhisk has wskadmin, which writes to its database
// directly). Only an administrator's credential (the one `gust up` saves
// as admin.auth) may call these routes.

type namespaceInfo struct {
	Namespace string                 `json:"namespace"`
	Auth      string                 `json:"auth,omitempty"` // only when created
	Admin     bool                   `json:"admin,omitempty"`
	Limits    *store.NamespaceLimits `json:"limits,omitempty"`
}

func requireAdmin(id *store.Identity) error {
	if !id.Admin {
		return gust.Forbidden("/api/v1/admin")
	}
	return nil
}

func (s *Server) adminListNamespaces(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if err := requireAdmin(id); err != nil {
		return err
	}
	names := s.cfg.Keys.Namespaces()
	sort.Strings(names)
	out := make([]namespaceInfo, 0, len(names))
	for _, ns := range names {
		if nid, ok := s.cfg.Keys.ByNamespace(ns); ok {
			out = append(out, namespaceInfo{Namespace: ns, Admin: nid.Admin, Limits: nid.Limits})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// adminCreateNamespace creates a namespace with a generated credential,
// shown once in the answer.
func (s *Server) adminCreateNamespace(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if err := requireAdmin(id); err != nil {
		return err
	}
	nid, err := s.cfg.Keys.Create(r.Context(), r.PathValue("ns"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, namespaceInfo{Namespace: nid.Namespace, Auth: nid.Auth()})
}

// adminDeleteNamespace revokes a namespace's credential. Its entities and
// activation records stay until the namespace is created again or they expire.
func (s *Server) adminDeleteNamespace(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if err := requireAdmin(id); err != nil {
		return err
	}
	ns := r.PathValue("ns")
	if ns == id.Namespace {
		return gust.Errorf(gust.KindInvalid, "The administrator's own namespace cannot be deleted.")
	}
	if err := s.cfg.Keys.Remove(r.Context(), ns); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, namespaceInfo{Namespace: ns})
}

func (s *Server) adminGetLimits(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if err := requireAdmin(id); err != nil {
		return err
	}
	nid, ok := s.cfg.Keys.ByNamespace(r.PathValue("ns"))
	if !ok {
		return gust.ErrNotFound
	}
	return writeJSON(w, http.StatusOK, nid.Effective(s.cfg.Limits))
}

// adminSetLimits replaces a namespace's throttle overrides; absent fields
// fall back to the system's values.
func (s *Server) adminSetLimits(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if err := requireAdmin(id); err != nil {
		return err
	}
	body, err := readBody(w, r, 64<<10)
	if err != nil {
		return err
	}
	var l store.NamespaceLimits
	if err := decodeJSON(body, &l); err != nil {
		return err
	}
	for name, v := range map[string]*int{"invocationsPerMinute": l.InvocationsPerMinute, "concurrentInvocations": l.ConcurrentInvocations, "firesPerMinute": l.FiresPerMinute} {
		if v != nil && *v < 0 {
			return gust.Errorf(gust.KindInvalid, "The limit %s must not be negative (0 means unlimited).", name)
		}
	}
	nid, err := s.cfg.Keys.SetLimits(r.Context(), r.PathValue("ns"), &l)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nid.Effective(s.cfg.Limits))
}
