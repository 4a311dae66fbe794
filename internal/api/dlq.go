package api

import (
	"context"
	"net/http"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// DeadLetters manages non-blocking invocations that failed every attempt.
// These routes are a Gust extension of the OpenWhisk API.
type DeadLetters interface {
	DeadLetters(ctx context.Context, ns string) ([]activation.DeadLetter, error)
	Redrive(ctx context.Context, ns, id string) (string, error)
	DiscardDeadLetter(ctx context.Context, ns, id string) error
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	list, err := s.cfg.DeadLetters.DeadLetters(r.Context(), ns)
	if err != nil {
		return err
	}
	if list == nil {
		list = []activation.DeadLetter{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// redrive queues a dead letter again: POST .../dlq/{id}.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	newID, err := s.cfg.DeadLetters.Redrive(r.Context(), ns, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("x-openwhisk-activation-id", newID)
	return writeJSON(w, http.StatusAccepted, map[string]string{"activationId": newID})
}

func (s *Server) discardDeadLetter(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	dlID := r.PathValue("id")
	if err := gust.ValidateActivationID(dlID); err != nil {
		return err
	}
	if err := s.cfg.DeadLetters.DiscardDeadLetter(r.Context(), ns, dlID); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"activationId": dlID})
}
