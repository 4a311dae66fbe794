package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// serveRoute serves managed APIs at /api/{namespace}/{basepath}/{relpath}:
// the route matching the path and verb runs its web action like a web
// request, with {name} path parameters as parameters.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request) error {
	received := s.now()
	ns := r.PathValue("ns")
	// "v1" is the REST API's own prefix: a namespace of that name cannot
	// have managed APIs.
	if s.cfg.Routes == nil || ns == "v1" {
		return gust.ErrNotFound
	}
	if !webMethod(r.Method) {
		return gust.Errorf(gust.KindMethod, gust.MsgMethod)
	}
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), "/api/")
	_, escRest, _ := strings.Cut(escaped, "/")
	var segs []string
	if escRest = strings.Trim(escRest, "/"); escRest != "" {
		for _, seg := range strings.Split(escRest, "/") {
			u, err := url.PathUnescape(seg)
			if err != nil {
				return gust.ErrNotFound
			}
			segs = append(segs, u)
		}
	}
	m, err := matchRoute(s.cfg.Routes.List(ns), r.Method, segs)
	if err != nil {
		return err
	}
	p, err := gust.ParsePath(m.route.Action, ns)
	if err != nil {
		return gust.ErrNotFound
	}
	owner, p, a, err := s.resolveWebAction(p.Namespace, p.Package, p.Name)
	if err != nil {
		return err
	}
	if r.ContentLength > int64(s.cfg.Limits.MaxPayloadSize) {
		return gust.Errorf(gust.KindTooLarge, "Request larger than allowed: %d > %d bytes.", r.ContentLength, s.cfg.Limits.MaxPayloadSize)
	}
	call := webCall{ext: "." + m.route.ResponseType, path: m.relPath, pathParams: m.params, viaRoute: true}
	return s.runWeb(w, r, received, owner, p, a, call)
}

// routeMatch is the route chosen for a request.
type routeMatch struct {
	route   store.Route
	relPath string            // the request path after the base path: "/books/42"
	params  map[string]string // path parameters: {"id": "42"}
}

// matchRoute picks the route for method and the unescaped path segments
// after the namespace. The longest matching base path wins; within it the
// route with the most literal segments. HEAD falls back to a GET route. A
// path that matches only routes of other verbs gets 405.
func matchRoute(apis []*store.API, method string, segs []string) (*routeMatch, error) {
	var best *routeMatch
	bestBase, bestLiterals := -1, -1
	pathMatched := false
	for _, api := range apis {
		base := splitPath(api.BasePath)
		if len(base) > len(segs) || !slices.Equal(base, segs[:len(base)]) || len(base) < bestBase {
			continue
		}
		rest := segs[len(base):]
		for _, rt := range api.Routes {
			params, literals, ok := matchTemplate(splitPath(rt.RelPath), rest)
			if !ok {
				continue
			}
			pathMatched = true
			if rt.Verb != method && !(method == http.MethodHead && rt.Verb == http.MethodGet) {
				continue
			}
			// An exact verb beats HEAD's fallback to GET at equal specificity.
			if rt.Verb != method {
				literals--
			}
			if len(base) > bestBase || literals > bestLiterals {
				best = &routeMatch{route: rt, relPath: "/" + strings.Join(rest, "/"), params: params}
				bestBase, bestLiterals = len(base), literals
			}
		}
	}
	switch {
	case best != nil:
		return best, nil
	case pathMatched:
		return nil, gust.Errorf(gust.KindMethod, gust.MsgMethod)
	}
	return nil, gust.ErrNotFound
}

// matchTemplate matches path segments against a route template; it returns
// the path parameters and the number of literal segments.
func matchTemplate(tmpl, segs []string) (map[string]string, int, bool) {
	if len(tmpl) != len(segs) {
		return nil, 0, false
	}
	var params map[string]string
	literals := 0
	for i, t := range tmpl {
		if len(t) > 2 && t[0] == '{' && t[len(t)-1] == '}' {
			if params == nil {
				params = map[string]string{}
			}
			params[t[1:len(t)-1]] = segs[i]
			continue
		}
		if t != segs[i] {
			return nil, 0, false
		}
		literals++
	}
	return params, literals, true
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
