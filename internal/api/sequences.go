package api

import (
	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
)

// buildSequence validates the components of the sequence action at p as
// OpenWhisk does on PUT: names resolved ("_" is p's namespace) and stored
// fully qualified, every component existing and reachable, no cycle back
// to p, and at most SequenceMaxLength atomic actions once nested
// sequences are inlined.
func (s *Server) buildSequence(p gust.Path, components []string) (gust.Exec, error) {
	if len(components) == 0 {
		return gust.Exec{}, gust.Errorf(gust.KindInvalid, activation.MsgSequenceNoComp)
	}
	resolved := make([]string, len(components))
	for i, c := range components {
		cp, err := gust.ParsePath(c, p.Namespace)
		if err != nil {
			return gust.Exec{}, err
		}
		resolved[i] = cp.String()
	}
	atomic := 0
	if err := s.inlineSequence(p, resolved, 0, &atomic); err != nil {
		return gust.Exec{}, err
	}
	return gust.Exec{Kind: gust.ExecSequence, Components: resolved}, nil
}

// inlineSequence walks components depth first, counting atomic actions.
func (s *Server) inlineSequence(self gust.Path, components []string, depth int, atomic *int) error {
	max := s.cfg.Limits.SequenceMaxLength
	if depth > max {
		return gust.Errorf(gust.KindInvalid, activation.MsgSequenceTooLong)
	}
	for _, c := range components {
		cp, err := gust.ParsePath(c, self.Namespace)
		if err != nil {
			return gust.Errorf(gust.KindInvalid, activation.MsgSequenceCompGone)
		}
		if cp == self {
			return gust.Errorf(gust.KindInvalid, activation.MsgSequenceSelf)
		}
		ra, err := s.cfg.Entities.ResolveAction(cp, self.Namespace)
		switch gust.KindOf(err) {
		case gust.KindNotFound, gust.KindConflict:
			return gust.Errorf(gust.KindInvalid, activation.MsgSequenceCompGone)
		}
		if err != nil {
			return err
		}
		if ra.Path == self {
			return gust.Errorf(gust.KindInvalid, activation.MsgSequenceSelf)
		}
		if ra.Action.Exec.Kind != gust.ExecSequence {
			if *atomic++; *atomic > max {
				return gust.Errorf(gust.KindInvalid, activation.MsgSequenceTooLong)
			}
			continue
		}
		if err := s.inlineSequence(self, ra.Action.Exec.Components, depth+1, atomic); err != nil {
			return err
		}
	}
	return nil
}
