package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Managed APIs (reference/openwhisk.md §7). OpenWhisk has no route API of
// its own: `wsk api` calls the web actions whisk.system/apimgmt/{createApi,
// getApi,deleteApi}.http, which drive a separate API gateway. Gust answers
// those three entry points natively, keeps the routes in the store, and
// serves them itself at /api/{namespace}/{basepath}/{relpath}.

// apiVerbs are the verbs a route may have (the client's ApiVerbs).
var apiVerbs = []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// apiResponseTypes are the web action extensions a route may answer with.
var apiResponseTypes = []string{"json", "http", "html", "svg", "text"}

// apiFailure answers an apimgmt call that failed the way OpenWhisk's
// actions do: 502 with {"error": msg} and no "code", which clients read as
// the action's own error and print.
type apiFailure string

func (s *Server) apimgmt(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	if s.cfg.Routes == nil {
		return gust.ErrNotFound
	}
	var err error
	switch op := r.PathValue("op"); {
	case op == "createApi.http" && r.Method == http.MethodPost:
		err = s.createAPI(w, r, id)
	case op == "getApi.http" && r.Method == http.MethodGet:
		err = s.getAPIs(w, r, id)
	case op == "deleteApi.http" && r.Method == http.MethodDelete:
		err = s.deleteAPI(w, r, id)
	case op == "createApi.http" || op == "getApi.http" || op == "deleteApi.http":
		return gust.Errorf(gust.KindMethod, gust.MsgMethod)
	default:
		return gust.ErrNotFound
	}
	if msg, ok := err.(apiFailure); ok {
		return writeJSON(w, http.StatusBadGateway, map[string]string{"error": string(msg)})
	}
	return err
}

func (e apiFailure) Error() string { return string(e) }

// apiDoc is the "apidoc" the CLI sends to createApi.
type apiDoc struct {
	Namespace       string          `json:"namespace"`
	APIName         string          `json:"apiName"`
	GatewayBasePath string          `json:"gatewayBasePath"`
	GatewayPath     string          `json:"gatewayPath"`
	GatewayMethod   string          `json:"gatewayMethod"`
	Swagger         json.RawMessage `json:"swagger"` // an object or a JSON string (wsk api create -c FILE)
	Action          *struct {
		Name          string `json:"name"`
		Namespace     string `json:"namespace"`
		BackendMethod string `json:"backendMethod"`
		BackendURL    string `json:"backendUrl"`
		AuthKey       string `json:"authkey"`
	} `json:"action"`
}

// validate returns createApi's message for a missing field, or "".
func (d *apiDoc) validate() string {
	switch {
	case d.Namespace == "":
		return "apidoc is missing the namespace field"
	case len(d.Swagger) > 0 && d.GatewayBasePath != "":
		return "swagger and gatewayBasePath are mutually exclusive and cannot be specified together."
	case len(d.Swagger) > 0:
		return ""
	case d.GatewayBasePath == "":
		return "apidoc is missing the gatewayBasePath field"
	case d.GatewayPath == "":
		return "apidoc is missing the gatewayPath field"
	case d.GatewayMethod == "":
		return "apidoc is missing the gatewayMethod field"
	case d.Action == nil:
		return "apidoc is missing the action field."
	case d.Action.BackendMethod == "":
		return "action is missing the backendMethod field."
	case d.Action.BackendURL == "":
		return "action is missing the backendUrl field."
	case d.Action.Namespace == "":
		return "action is missing the namespace field."
	case d.Action.Name == "":
		return "action is missing the name field."
	case d.Action.AuthKey == "":
		return "action is missing the authkey field."
	}
	return ""
}

func (s *Server) createAPI(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	body, err := readBody(w, r, s.cfg.Limits.MaxPayloadSize)
	if err != nil {
		return err
	}
	var in struct {
		APIDoc json.RawMessage `json:"apidoc"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, &in); err != nil {
			return err
		}
	}
	if len(in.APIDoc) == 0 || string(in.APIDoc) == "null" {
		return apiFailure("apidoc is required.")
	}
	var doc apiDoc
	if err := unmarshalMaybeString(in.APIDoc, &doc); err != nil {
		return apiFailure("apidoc field cannot be parsed. Ensure it is valid JSON.")
	}
	if msg := doc.validate(); msg != "" {
		return apiFailure(msg)
	}
	respType := strings.ToLower(r.URL.Query().Get("responsetype"))
	if respType == "" {
		respType = "json"
	}
	if !slices.Contains(apiResponseTypes, respType) {
		return apiFailure(fmt.Sprintf("API creation failure: response type '%s' is not one of %s.", respType, strings.Join(apiResponseTypes, ", ")))
	}
	ns := id.Namespace // the caller's namespace replaces the apidoc's, as __ow_user does in OpenWhisk

	var base string
	var next func(cur *store.API) *store.API
	if len(doc.Swagger) > 0 {
		api, msg := apiFromSwagger(doc.Swagger, ns, respType)
		if msg != "" {
			return apiFailure(msg)
		}
		for _, rt := range api.Routes {
			if err := s.checkRouteTarget(ns, rt); err != nil {
				return err
			}
		}
		base = api.BasePath
		next = func(*store.API) *store.API { return api }
	} else {
		route, msg := routeFromDoc(&doc, ns, respType)
		if msg != "" {
			return apiFailure("API creation failure: " + msg)
		}
		if err := s.checkRouteTarget(ns, route); err != nil {
			return err
		}
		base = cleanBasePath(doc.GatewayBasePath)
		next = func(cur *store.API) *store.API {
			api := &store.API{Namespace: ns, BasePath: base, Name: doc.APIName}
			if cur != nil {
				api.Name = cur.Name
				api.Routes = append(api.Routes, cur.Routes...)
			}
			if api.Name == "" {
				api.Name = base
			}
			api.Routes = slices.DeleteFunc(api.Routes, func(rt store.Route) bool {
				return rt.RelPath == route.RelPath && rt.Verb == route.Verb
			})
			api.Routes = append(api.Routes, route)
			return api
		}
	}
	api, err := s.updateAPI(r, ns, base, next)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.apiValue(r, api))
}

// updateAPI applies next to the current API of a base path (nil when there
// is none) and stores the result, retrying when another request changed it
// in between.
func (s *Server) updateAPI(r *http.Request, ns, base string, next func(cur *store.API) *store.API) (*store.API, error) {
	for attempt := 0; ; attempt++ {
		cur, _ := s.cfg.Routes.Get(ns, base)
		api := next(cur)
		api.Updated = s.now().UnixMilli()
		var rev uint64
		if cur != nil {
			rev = cur.Revision
		}
		stored, err := s.cfg.Routes.Put(r.Context(), api, rev)
		if err == nil || gust.KindOf(err) != gust.KindConflict || attempt == 4 {
			return stored, err
		}
	}
}

// checkRouteTarget refuses a route of namespace ns to an action ns may not
// invoke. The route runs its action as ns, so it may reach what an invoke
// by ns may: ns's own actions and those of published packages, directly or
// through a binding (store.ResolveAction). Anything else would let one
// namespace serve, and so run, another's private actions. An action that
// does not exist (yet) is accepted: the route answers 404 until it does,
// as with OpenWhisk's gateway, and serveRoute resolves it again anyway.
func (s *Server) checkRouteTarget(ns string, rt store.Route) error {
	p, err := gust.ParsePath(rt.Action, ns)
	if err != nil {
		return gust.Errorf(gust.KindInvalid, "API creation failure: action name '%s' is not valid.", rt.Action)
	}
	_, err = s.cfg.Entities.ResolveAction(p, ns)
	if err == nil {
		return nil
	}
	switch gust.KindOf(err) {
	case gust.KindNotFound:
		return nil
	case gust.KindForbidden:
		return gust.Errorf(gust.KindForbidden, "API creation failure: namespace '%s' may not serve the action '%s': "+
			"an API may only serve its namespace's own actions and those of published packages.", ns, p)
	case gust.KindInvalid:
		return gust.Errorf(gust.KindInvalid, "API creation failure: action '%s': %s", p, gust.MessageOf(err))
	}
	return err
}

// msgPathParamsHTTP is wsk's refusal of a route with path parameters and
// another response type than http. wsk checks it before calling createApi;
// Gust checks it here too, for clients that do not.
const msgPathParamsHTTP = "A response type of 'http' is required when using path parameters."

// routeFromDoc builds the route of a createApi apidoc; msg says what is wrong.
func routeFromDoc(doc *apiDoc, ns, respType string) (route store.Route, msg string) {
	verb := strings.ToUpper(doc.GatewayMethod)
	if !slices.Contains(apiVerbs, verb) {
		return route, fmt.Sprintf("operation '%s' is not one of %s.", doc.GatewayMethod, strings.Join(apiVerbs, ", "))
	}
	rel, msg := cleanRelPath(doc.GatewayPath)
	if msg != "" {
		return route, msg
	}
	if respType != "http" && len(pathParamNames(rel)) > 0 {
		return route, msgPathParamsHTTP
	}
	// "_" and the apidoc's own namespace both mean the caller's namespace.
	// Another namespace is kept as given: checkRouteTarget decides whether
	// the caller may serve its action.
	actionNS := doc.Action.Namespace
	if actionNS == "_" || actionNS == doc.Namespace {
		actionNS = ns
	}
	p, err := gust.ParsePath(doc.Action.Name, actionNS)
	if err != nil {
		return route, fmt.Sprintf("action name '%s' is not valid.", doc.Action.Name)
	}
	if p.Namespace == "_" {
		p.Namespace = ns
	}
	return store.Route{RelPath: rel, Verb: verb, Action: p.String(), ResponseType: respType}, ""
}

// apiFromSwagger builds an API from a whole swagger document (wsk api
// create -c FILE), which replaces whatever the base path had. Each
// operation's x-openwhisk names its action; createAPI checks that the
// namespace may reach it, whatever namespace the document names.
func apiFromSwagger(raw json.RawMessage, ns, respType string) (*store.API, string) {
	var sw struct {
		BasePath string `json:"basePath"`
		Info     *struct {
			Title string `json:"title"`
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := unmarshalMaybeString(raw, &sw); err != nil {
		return nil, "swagger field cannot be parsed. Ensure it is valid JSON."
	}
	switch {
	case sw.BasePath == "":
		return nil, "swagger is missing the basePath field."
	case sw.Paths == nil:
		return nil, "swagger is missing the paths field."
	case sw.Info == nil:
		return nil, "swagger is missing the info field."
	}
	api := &store.API{Namespace: ns, BasePath: cleanBasePath(sw.BasePath), Name: sw.Info.Title}
	if api.Name == "" {
		api.Name = api.BasePath
	}
	for rel, ops := range sw.Paths {
		relPath, msg := cleanRelPath(rel)
		if msg != "" {
			return nil, "API creation failure: " + msg
		}
		for verb, opRaw := range ops {
			verb = strings.ToUpper(verb)
			if !slices.Contains(apiVerbs, verb) {
				continue // "parameters" and extensions sit beside the operations
			}
			var op struct {
				XOpenWhisk *struct {
					Namespace string `json:"namespace"`
					Package   string `json:"package"`
					Action    string `json:"action"`
					URL       string `json:"url"`
				} `json:"x-openwhisk"`
			}
			if json.Unmarshal(opRaw, &op) != nil || op.XOpenWhisk == nil || op.XOpenWhisk.Action == "" {
				return nil, fmt.Sprintf("API creation failure: operation %s %s has no x-openwhisk action.", verb, rel)
			}
			x := op.XOpenWhisk
			p := gust.Path{Namespace: x.Namespace, Package: x.Package, Name: x.Action}
			if p.Namespace == "" || p.Namespace == "_" {
				p.Namespace = ns
			}
			rt := respType
			if i := strings.LastIndexByte(x.URL, '.'); i >= 0 && slices.Contains(apiResponseTypes, x.URL[i+1:]) {
				rt = x.URL[i+1:]
			}
			if rt != "http" && len(pathParamNames(relPath)) > 0 {
				return nil, fmt.Sprintf("API creation failure: operation %s %s: %s", verb, rel, msgPathParamsHTTP)
			}
			api.Routes = append(api.Routes, store.Route{RelPath: relPath, Verb: verb, Action: p.String(), ResponseType: rt})
		}
	}
	sort.Slice(api.Routes, func(i, j int) bool {
		a, b := api.Routes[i], api.Routes[j]
		return a.RelPath < b.RelPath || a.RelPath == b.RelPath && a.Verb < b.Verb
	})
	api.Swagger = raw
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		api.Swagger = json.RawMessage(s)
	}
	return api, ""
}

func (s *Server) getAPIs(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	q := r.URL.Query()
	pg, err := pageParams(q, "apis")
	if err != nil {
		return err
	}
	apis := s.findAPIs(id.Namespace, q.Get("basepath"))
	type item struct {
		ID    string         `json:"id"`
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
	out := []item{}
	for i := pg.skip; i < len(apis) && len(out) < pg.limit; i++ {
		key := "API:" + apis[i].Namespace + ":" + apis[i].BasePath
		out = append(out, item{ID: key, Key: key, Value: s.apiValue(r, apis[i])})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"apis": out})
}

// findAPIs returns the APIs of ns, or the one whose base path or name is
// basepathOrName (getApi takes either, as OpenWhisk's does).
func (s *Server) findAPIs(ns, basepathOrName string) []*store.API {
	all := s.cfg.Routes.List(ns)
	if basepathOrName == "" {
		return all
	}
	var out []*store.API
	for _, api := range all {
		if strings.HasPrefix(basepathOrName, "/") && api.BasePath == cleanBasePath(basepathOrName) ||
			!strings.HasPrefix(basepathOrName, "/") && api.Name == basepathOrName {
			out = append(out, api)
		}
	}
	return out
}

func (s *Server) deleteAPI(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	q := r.URL.Query()
	base, relIn, op := q.Get("basepath"), q.Get("relpath"), strings.ToUpper(q.Get("operation"))
	switch {
	case base == "":
		return apiFailure("basepath is required.")
	case relIn == "" && op != "":
		return apiFailure("When specifying an operation, the path is required.")
	}
	for attempt := 0; ; attempt++ {
		found := s.findAPIs(id.Namespace, base)
		if len(found) == 0 {
			return apiFailure(fmt.Sprintf("API deletion failure: API '%s' does not exist.", base))
		}
		cur := found[0]
		var err error
		if relIn == "" {
			err = s.cfg.Routes.Delete(r.Context(), cur.Namespace, cur.BasePath, cur.Revision)
		} else {
			rel, _ := cleanRelPath(relIn)
			left := slices.DeleteFunc(append([]store.Route(nil), cur.Routes...), func(rt store.Route) bool {
				return rt.RelPath == rel && (op == "" || rt.Verb == op)
			})
			switch {
			case len(left) == len(cur.Routes) && op == "":
				return apiFailure(fmt.Sprintf("API deletion failure: path %s does not exist in the API", relIn))
			case len(left) == len(cur.Routes):
				return apiFailure(fmt.Sprintf("API deletion failure: path %s with operation %s does not exist in the API", relIn, strings.ToLower(op)))
			case len(left) == 0:
				err = s.cfg.Routes.Delete(r.Context(), cur.Namespace, cur.BasePath, cur.Revision)
			default:
				next := *cur
				next.Routes, next.Swagger, next.Updated = left, nil, s.now().UnixMilli()
				_, err = s.cfg.Routes.Put(r.Context(), &next, cur.Revision)
			}
		}
		if err == nil {
			return writeJSON(w, http.StatusOK, map[string]any{})
		}
		if gust.KindOf(err) != gust.KindConflict || attempt == 4 {
			return err
		}
	}
}

// apiValue is the CLI's view of an API: OpenWhisk's createApi response and
// the "value" of each getApi entry.
func (s *Server) apiValue(r *http.Request, api *store.API) map[string]any {
	host := requestBase(r)
	var doc any = swaggerDoc(host, api)
	if len(api.Swagger) > 0 {
		doc = api.Swagger
	}
	return map[string]any{
		"namespace":      api.Namespace,
		"gwApiUrl":       host + "/api/" + url.PathEscape(api.Namespace) + strings.TrimSuffix(api.BasePath, "/"),
		"gwApiActivated": true,
		"tenantId":       api.Namespace,
		"apidoc":         doc,
	}
}

// swaggerDoc renders an API as the Swagger 2.0 document the CLI reads:
// every operation has operationId, x-openwhisk {namespace, package, action,
// url} and responses.default (the fields it checks).
func swaggerDoc(host string, api *store.API) map[string]any {
	paths := map[string]any{}
	var cases []any
	for _, rt := range api.Routes {
		p, err := gust.ParsePath(rt.Action, api.Namespace)
		if err != nil {
			continue // stored routes were validated
		}
		verb := strings.ToLower(rt.Verb)
		opID := verb + "_" + rt.RelPath
		actionURL := webActionURL(host, p, rt.ResponseType)
		op := map[string]any{
			"operationId": opID,
			"x-openwhisk": map[string]string{"namespace": p.Namespace, "package": p.Package, "action": p.Name, "url": actionURL},
			"responses":   map[string]any{"default": map[string]string{"description": "Default response"}},
		}
		var params []any
		for _, name := range pathParamNames(rt.RelPath) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "type": "string"})
		}
		if params != nil {
			op["parameters"] = params
		}
		ops, _ := paths[rt.RelPath].(map[string]any)
		if ops == nil {
			ops = map[string]any{}
			paths[rt.RelPath] = ops
		}
		ops[verb] = op
		cases = append(cases, map[string]any{
			"operations": []string{opID},
			"execute":    []any{map[string]any{"invoke": map[string]string{"target-url": actionURL, "verb": "keep"}}},
		})
	}
	return map[string]any{
		"swagger":  "2.0",
		"info":     map[string]string{"title": api.Name, "version": "1.0.0"},
		"basePath": api.BasePath,
		"paths":    paths,
		"x-ibm-configuration": map[string]any{
			"assembly": map[string]any{"execute": []any{map[string]any{"operation-switch": map[string]any{"case": cases}}}},
			"cors":     map[string]bool{"enabled": true},
		},
	}
}

// webActionURL is the web URL of the action at p.
func webActionURL(host string, p gust.Path, ext string) string {
	pkg := p.Package
	if pkg == "" {
		pkg = "default"
	}
	return host + webPrefix + url.PathEscape(p.Namespace) + "/" + url.PathEscape(pkg) + "/" + url.PathEscape(p.Name) + "." + ext
}

// requestBase is the scheme and host the client used to reach us, for URLs
// it can follow back.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// cleanBasePath gives a base path one leading slash and no trailing one.
func cleanBasePath(p string) string {
	p = "/" + strings.Trim(p, "/")
	return p
}

// cleanRelPath checks a relative path: segments are literal or a whole
// {name} path parameter, and parameter names cannot be reserved ones.
func cleanRelPath(p string) (string, string) {
	p = "/" + strings.TrimPrefix(p, "/")
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		if name, ok = strings.CutSuffix(name, "}"); !ok || name == "" || strings.ContainsAny(name, "{}") {
			return "", fmt.Sprintf("path '%s' is not valid: a path parameter must be a whole segment {name}.", p)
		}
		if isReserved(name) {
			return "", fmt.Sprintf("path '%s' is not valid: '%s' is a reserved parameter.", p, name)
		}
	}
	return p, ""
}

// pathParamNames lists the {name} parameters of a relative path.
func pathParamNames(rel string) []string {
	var out []string
	for _, seg := range strings.Split(strings.Trim(rel, "/"), "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// unmarshalMaybeString decodes raw into v, also when raw is a JSON string
// holding the JSON (OpenWhisk's apidoc and swagger may be either).
func unmarshalMaybeString(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = json.RawMessage(s)
	}
	return json.Unmarshal(raw, v)
}
