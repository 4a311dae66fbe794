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
//
// The route's namespace is the caller: its own actions, in its packages or
// through its bindings, and those of published packages are reachable, as
// for any invoke; nothing else is, whatever the stored route names (routes
// written before creation checked this are caught here).
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request) error {
	received := s.now()
	ns := r.PathValue("ns")
	// "v1" is the REST API's own prefix: a namespace of that name cannot
	// have managed APIs.
	if s.cfg.Routes == nil || ns == "v1" {
		return gust.ErrNotFound
	}
	// OpenWhisk's gateway serves every API with CORS enabled: it answers
	// preflights and marks responses, errors included, readable from any
	// origin. runWeb takes these off for an action with web-custom-options.
	setWebCORS(w.Header(), r)
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
	apis := s.cfg.Routes.List(ns)
	m, err := matchRoute(apis, r.Method, segs)
	if r.Method == http.MethodOptions && gust.KindOf(err) == gust.KindMethod {
		// A preflight of a path served for other verbs: it is about the
		// verb the browser names, whose action may answer OPTIONS itself
		// (web-custom-options); else the platform answers.
		if verb := strings.ToUpper(r.Header.Get("Access-Control-Request-Method")); verb != "" && verb != http.MethodOptions {
			m, err = matchRoute(apis, verb, segs)
		}
		if err != nil {
			w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	if err != nil {
		return err
	}
	p, err := gust.ParsePath(m.route.Action, ns)
	if err != nil {
		return gust.ErrNotFound
	}
	wa, err := s.resolveWebAction(ns, p)
	if err != nil {
		return err
	}
	call := webCall{ext: "." + m.route.ResponseType, path: m.relPath, pathParams: m.params,
		// The route owner vouches for its callers only with its own actions.
		vouched: wa.own}
	return s.runWeb(w, r, received, wa, call)
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
// path that matches only routes of other verbs gets 405 (serveRoute answers
// OPTIONS there itself).
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
