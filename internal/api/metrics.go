package api

import (
	"net/http"

	"github.com/gust-faas/gust/internal/store"
)

// serveMetrics writes the Prometheus text format. It needs credentials
// like every API route, and shows a tenant only its own namespace's series
// plus the node-wide ones (series without a namespace label).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if s.cfg.Metrics == nil {
		return writeRaw(w, http.StatusOK, nil)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return s.cfg.Metrics.Write(w, func(labels map[string]string) bool {
		ns, ok := labels["namespace"]
		return !ok || ns == id.Namespace
	})
}
