package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// namespace resolves the {ns} segment: "_" is the caller's namespace; any
// other namespace is out of reach.
func namespace(r *http.Request, id *store.Identity) (string, error) {
	ns := r.PathValue("ns")
	if ns == "_" || ns == id.Namespace {
		return id.Namespace, nil
	}
	if err := gust.ValidateName("namespace", ns); err != nil {
		return "", err
	}
	return "", gust.Forbidden(ns)
}

// entityPath parses "{name}" or "{pkg}/{name}" of an entity route.
func entityPath(ns, rest string) (gust.Path, error) {
	parts := strings.Split(rest, "/")
	var p gust.Path
	switch len(parts) {
	case 1:
		p = gust.Path{Namespace: ns, Name: parts[0]}
	case 2:
		p = gust.Path{Namespace: ns, Package: parts[0], Name: parts[1]}
		if err := gust.ValidateName("package", p.Package); err != nil {
			return p, err
		}
	default:
		return p, gust.ErrNotFound
	}
	if err := gust.ValidateName("entity", p.Name); err != nil {
		return p, err
	}
	return p, nil
}

// boolParam reads a true/false query parameter.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, gust.Errorf(gust.KindInvalid, "The value '%s' is not a boolean for parameter '%s'.", v, name)
	}
	return b, nil
}

// page holds list paging parameters.
type page struct {
	limit, skip int
	count       bool
}

// pageParams reads limit (default 30, 0 = max 200), skip and count with
// OpenWhisk's messages.
func pageParams(q url.Values, collection string) (page, error) {
	p := page{limit: 30}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, gust.Errorf(gust.KindInvalid, "The value '%s' is not an integer for %s.", v, collection)
		}
		if n < 0 || n > 200 {
			return p, gust.Errorf(gust.KindInvalid, "The value '%d' is not in the range of 0 to 200 for %s.", n, collection)
		}
		if n == 0 {
			n = 200
		}
		p.limit = n
	}
	if v := q.Get("skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, gust.Errorf(gust.KindInvalid, "The value '%s' is not an integer for %s.", v, collection)
		}
		if n < 0 {
			return p, gust.Errorf(gust.KindInvalid, "The value '%d' is not a non-negative integer for %s.", n, collection)
		}
		p.skip = n
	}
	c, err := boolParam(q, "count", false)
	p.count = c
	return p, err
}

// readBody reads at most limit bytes of the body, refusing larger bodies
// with 413 before reading them whole.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, gust.Errorf(gust.KindTooLarge, "Request larger than allowed: %d > %d bytes.", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return nil, gust.Errorf(gust.KindTooLarge, "Request larger than allowed: more than %d bytes.", limit)
		}
		return nil, gust.Errorf(gust.KindInvalid, "The request content could not be read: %v", err)
	}
	return body, nil
}

// decodeJSON decodes a JSON body into v with OpenWhisk's malformed message.
func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return gust.Errorf(gust.KindInvalid, "The request content was malformed:\n%v", err)
	}
	return nil
}

// namedPath is the path of the trigger or rule a request names: its
// {ns} resolved for the caller and its {name}, checked as a kind name.
func namedPath(r *http.Request, id *store.Identity, kind string) (gust.Path, error) {
	ns, err := namespace(r, id)
	if err != nil {
		return gust.Path{}, err
	}
	name := r.PathValue("name")
	return gust.Path{Namespace: ns, Name: name}, gust.ValidateName(kind, name)
}

// namedRecord is namedPath and the record of type typ stored there.
func (s *Server) namedRecord(r *http.Request, id *store.Identity, typ string) (gust.Path, *store.Record, error) {
	p, err := namedPath(r, id, typ)
	if err != nil {
		return p, nil, err
	}
	rec, err := s.cfg.Entities.GetType(p, typ)
	return p, rec, err
}

// putBody reads the ?overwrite parameter of an entity PUT and decodes its
// body, which may be empty, into in.
func (s *Server) putBody(w http.ResponseWriter, r *http.Request, in any) (overwrite bool, err error) {
	overwrite, err = boolParam(r.URL.Query(), "overwrite", false)
	if err != nil {
		return false, err
	}
	body, err := readBody(w, r, s.cfg.Limits.MaxBodySize)
	if err != nil {
		return false, err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, in); err != nil {
			return false, err
		}
	}
	return overwrite, nil
}

// replaced returns the record a PUT of type typ at p replaces: nil when
// there is none, a conflict when it is another kind of entity or the
// caller did not ask to overwrite.
func (s *Server) replaced(p gust.Path, typ string, overwrite bool) (*store.Record, error) {
	old, err := s.cfg.Entities.Get(p)
	switch {
	case gust.KindOf(err) == gust.KindNotFound:
		return nil, nil
	case err != nil:
		return nil, err
	case old.Type != typ:
		return nil, gust.Errorf(gust.KindConflict, gust.MsgOtherColl)
	case !overwrite:
		return nil, gust.Errorf(gust.KindConflict, gust.MsgExists)
	}
	return old, nil
}

// entityMeta is what a PUT may set on any package, trigger or rule.
type entityMeta struct {
	Annotations *gust.KeyValues `json:"annotations"`
	Version     *string         `json:"version"`
	Publish     *bool           `json:"publish"`
}

// applyMeta checks m and sets what it holds on the entity's fields.
func (s *Server) applyMeta(m entityMeta, annotations *gust.KeyValues, version *string, publish *bool) error {
	if m.Annotations != nil {
		if err := s.checkAnnotations(*m.Annotations); err != nil {
			return err
		}
		*annotations = *m.Annotations
	}
	if m.Version != nil {
		if !gust.ValidVersion(*m.Version) {
			return gust.Errorf(gust.KindInvalid, "The request content was malformed:\nversion %q is not a semantic version (major.minor.patch).", *m.Version)
		}
		*version = *m.Version
	}
	if m.Publish != nil {
		*publish = *m.Publish
	}
	return nil
}
