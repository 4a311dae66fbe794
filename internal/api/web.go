package api

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// Web actions (reference/openwhisk.md §6): any verb on
// /api/v1/web/{namespace}/{package|binding|default}/{action}[.ext][/rest]
// runs an action annotated web-export as {namespace}, with the HTTP request
// as parameters, and turns the result into the HTTP response. The action is
// {namespace}'s own, or one of another namespace's published package
// reached through a binding of {namespace}.

const webPrefix = "/api/v1/web/"

// Messages of web action failures, OpenWhisk's (Messages.scala), which
// clients and tests match on.
const (
	msgWebProcessing   = "There was an error processing your request."
	msgWebNotReady     = "Response not yet ready."
	msgWebNoProperty   = "Response does not include requested property."
	msgWebContentType  = "Response type in header did not match generated content type."
	msgWebUnknownType  = "Response did not specify a known content-type."
	msgWebInvalidMedia = "Response is not valid '%s'."
)

// webExts are the response extensions; none means ".http".
var webExts = []string{".http", ".json", ".html", ".svg", ".text"}

// webTarget is a parsed web action URL.
type webTarget struct {
	Namespace string
	Package   string // "" for the "default" package
	Action    string
	Ext       string // ".http" when the URL has none
	Rest      string // the escaped path after the action and extension: "/a/b", or ""
}

// parseWebPath parses the escaped path after /api/v1/web/. Names are
// unescaped and validated; anything malformed is simply not found, as in
// OpenWhisk, whose route does not match such a path.
func parseWebPath(escaped string) (webTarget, error) {
	segs := strings.SplitN(escaped, "/", 4)
	if len(segs) < 3 {
		return webTarget{}, gust.ErrNotFound
	}
	var names [3]string
	for i := range names {
		n, err := url.PathUnescape(segs[i])
		if err != nil {
			return webTarget{}, gust.ErrNotFound
		}
		names[i] = n
	}
	t := webTarget{Namespace: names[0], Package: names[1], Action: names[2], Ext: ".http"}
	if t.Package == "default" {
		t.Package = ""
	}
	for _, ext := range webExts {
		if base, ok := strings.CutSuffix(t.Action, ext); ok {
			t.Action, t.Ext = base, ext
			break
		}
	}
	if len(segs) == 4 {
		t.Rest = "/" + segs[3]
	}
	if gust.ValidateName("namespace", t.Namespace) != nil || gust.ValidateName("action", t.Action) != nil ||
		t.Package != "" && gust.ValidateName("package", t.Package) != nil {
		return webTarget{}, gust.ErrNotFound
	}
	return t, nil
}

// webCall is how a web action is reached.
type webCall struct {
	ext        string            // response extension: ".http", ".json", ...
	path       string            // __ow_path
	project    []string          // result fields to project (non-.http extensions only)
	pathParams map[string]string // path parameters of an API route
	// vouched: the request came through a managed API route of the
	// action's own namespace, whose owner vouches for the caller, so the
	// action's require-whisk-auth is not asked (OpenWhisk's gateway sends
	// the secret itself). Never set for an action of another namespace's
	// shared package: its owner vouched for nobody.
	vouched bool
}

// serveWeb handles /api/v1/web/...: every verb, with or without credentials.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) error {
	received := s.now()
	if !webMethod(r.Method) {
		return gust.Errorf(gust.KindMethod, gust.MsgMethod)
	}
	t, err := parseWebPath(strings.TrimPrefix(r.URL.EscapedPath(), webPrefix))
	if err != nil {
		return err
	}
	// The URL's namespace is the caller's: an action of another namespace
	// is reached through a binding of this one (OpenWhisk's semantics).
	wa, err := s.resolveWebAction(t.Namespace, gust.Path{Namespace: t.Namespace, Package: t.Package, Name: t.Action})
	if err != nil {
		return err
	}
	call := webCall{ext: t.Ext, path: t.Rest}
	if t.Ext != ".http" {
		for _, seg := range strings.Split(t.Rest, "/") {
			if seg == "" {
				continue
			}
			field, err := url.PathUnescape(seg)
			if err != nil {
				return gust.Errorf(gust.KindNotFound, msgWebNoProperty)
			}
			call.project = append(call.project, field)
		}
	}
	return s.runWeb(w, r, received, wa, call)
}

func webMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// webAction is a web action resolved for a request.
type webAction struct {
	// caller is the namespace the activation runs as and is recorded in:
	// the web URL's, or the route's.
	caller *store.Identity
	// path is the action as asked for, through a binding maybe; the
	// invoker resolves it again and merges the inherited parameters.
	path   gust.Path
	action *gust.Action
	// bound are the parameters bound on the way: package < binding <
	// action. A request may not override them when the action is final.
	bound gust.KeyValues
	// own: the action lives in the caller's namespace, not in another
	// namespace's shared package.
	own bool
	ra  *store.ResolvedAction // what runs: the resolution checked here
}

// resolveWebAction finds the web action at p for a request in namespace
// caller, through the resolver every invoke uses (store.ResolveAction): the
// caller's own actions, in its packages or through its bindings, and the
// actions of published packages. Everything that fails is "not found",
// never "forbidden": a web URL must not reveal whether an action exists
// when it is not exported or not shared.
func (s *Server) resolveWebAction(caller string, p gust.Path) (*webAction, error) {
	id, ok := s.cfg.Keys.ByNamespace(caller)
	if !ok {
		return nil, gust.ErrNotFound
	}
	ra, err := s.cfg.Entities.ResolveAction(p, caller)
	if err != nil {
		switch gust.KindOf(err) {
		case gust.KindNotFound, gust.KindForbidden, gust.KindInvalid:
			return nil, gust.ErrNotFound
		}
		return nil, err
	}
	a := ra.Action
	if !a.Annotations.IsTrue("web-export") {
		return nil, gust.ErrNotFound
	}
	bound := a.Parameters
	if len(ra.Params) > 0 {
		bound = ra.Params.Merge(a.Parameters)
	}
	return &webAction{caller: id, path: p, action: a, bound: bound, own: ra.Path.Namespace == caller, ra: ra}, nil
}

// Default CORS headers of web actions (OpenWhisk's CorsSettings.WebActions).
const (
	webAllowMethods = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
	webAllowHeaders = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
)

// setWebCORS marks a response as readable from any origin, with the
// headers a preflight may ask for.
func setWebCORS(h http.Header, r *http.Request) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", webAllowMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", webAllowHeaders)
	}
}

// clearWebCORS removes what setWebCORS set.
func clearWebCORS(h http.Header) {
	h.Del("Access-Control-Allow-Origin")
	h.Del("Access-Control-Allow-Methods")
	h.Del("Access-Control-Allow-Headers")
}

// runWeb checks access, builds the action's input from the request, runs
// the action and writes its result as the response.
func (s *Server) runWeb(w http.ResponseWriter, r *http.Request, received time.Time, wa *webAction, call webCall) error {
	a := wa.action
	if a.Annotations.IsTrue("web-custom-options") {
		// The action's CORS headers are its own (a route may have set the
		// platform's already).
		clearWebCORS(w.Header())
	} else {
		// The platform answers preflights itself and marks every response,
		// errors included, as readable from any origin.
		setWebCORS(w.Header(), r)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	user := s.webCaller(r)
	// With web-custom-options the action answers OPTIONS itself, before any
	// authentication (a browser's preflight carries no credentials).
	if !call.vouched && r.Method != http.MethodOptions && !webAuthorized(a.Annotations, r.Header, user) {
		return gust.Errorf(gust.KindUnauthorized, gust.MsgNoAuth)
	}
	// The limit (the calling namespace's) holds the body as the client sent
	// it, as OpenWhisk limits the request entity: a binary body grows by a
	// third when it is base64-encoded for the action, which must not make a
	// body within the limit too large. Bound parameters count with it.
	limit := wa.caller.Effective(s.cfg.Limits).MaxPayloadSize
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	if len(wa.bound) > 0 {
		if n := len(body) + wa.bound.Size(); n > limit {
			return gust.Errorf(gust.KindTooLarge, "Request larger than allowed: %d > %d bytes.", n, limit)
		}
	}
	params, err := webParams(r, body, a, wa.bound, user, call)
	if err != nil {
		return err
	}
	out, err := s.cfg.Invoker.Invoke(r.Context(), activation.Request{
		Caller: wa.caller, Path: wa.path, Resolved: wa.ra, Params: params, Blocking: true, Received: received,
		Wait:           time.Duration(s.cfg.Limits.MaxBlockingWait) * time.Millisecond,
		PayloadChecked: true, // on the body as received, above
	})
	if err != nil {
		return err
	}
	w.Header().Set("x-openwhisk-activation-id", out.ActivationID)
	w.Header().Set("X-Gust-Activation-Id", out.ActivationID)
	if out.Activation == nil {
		return gust.Errorf(gust.KindTimeout, msgWebNotReady)
	}
	resp := out.Activation.Response
	var result json.RawMessage
	projected := false
	switch resp.StatusCode {
	case gust.StatusSuccess:
		result = resp.Result
		if len(call.project) > 0 {
			if result = projectField(result, call.project); result == nil {
				return gust.Errorf(gust.KindNotFound, msgWebNoProperty)
			}
			projected = true
		}
	case gust.StatusApplicationError:
		// The error value is the response: {"error":{"statusCode":400,...}}
		// becomes a 400 from a .http action.
		if result = projectField(resp.Result, []string{"error"}); result == nil {
			return gust.Errorf(gust.KindNotFound, msgWebNoProperty)
		}
	default:
		return gust.Errorf(gust.KindInvalid, msgWebProcessing)
	}
	wr, err := renderWeb(call.ext, result, projected)
	if err != nil {
		return err
	}
	return wr.write(w)
}

// webCaller returns the identity of valid Basic credentials, or nil: a web
// request with wrong credentials is anonymous, not refused, as in
// OpenWhisk.
func (s *Server) webCaller(r *http.Request) *store.Identity {
	if r.Header.Get("Authorization") == "" {
		return nil
	}
	id, err := s.authenticate(r)
	if err != nil {
		return nil
	}
	return id
}

// webAuthorized applies the require-whisk-auth annotation: true needs valid
// credentials of any namespace; a string or number must equal the
// X-Require-Whisk-Auth header; false or absent leaves the action open. Any
// other value locks it, as OpenWhisk does.
func webAuthorized(ann gust.KeyValues, h http.Header, user *store.Identity) bool {
	v, ok := ann.Get("require-whisk-auth")
	if !ok {
		return true
	}
	v = bytes.TrimSpace(v)
	var want string
	switch {
	case string(v) == "true":
		return user != nil
	case string(v) == "false":
		return true
	case len(v) > 0 && v[0] == '"':
		if json.Unmarshal(v, &want) != nil {
			return false
		}
	case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
		want = string(v)
		if n, err := strconv.ParseInt(want, 10, 64); err == nil {
			want = strconv.FormatInt(n, 10)
		}
	default:
		return false
	}
	got := h.Get("X-Require-Whisk-Auth")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// webReserved are the parameters the platform sets; a request may not set them.
var webReserved = []string{"__ow_method", "__ow_headers", "__ow_path", "__ow_user", "__ow_query", "__ow_body"}

// webParams builds the action's input from the request. Without raw-http,
// query parameters (strings) and the fields of a JSON object or form body
// become parameters (body over query), and any other body goes under
// __ow_body; with raw-http the query and body arrive unparsed in __ow_query
// and __ow_body. Request parameters may not set a reserved __ow_* key nor,
// for an action annotated final, one of the parameters bound to it or to
// its package and binding. Those bound parameters are merged under these by
// the activation service.
func webParams(r *http.Request, body []byte, a *gust.Action, bound gust.KeyValues, user *store.Identity, call webCall) (json.RawMessage, error) {
	raw := a.Annotations.IsTrue("raw-http")
	in := map[string]any{
		"__ow_method":  strings.ToLower(r.Method),
		"__ow_headers": webHeaders(r, user),
		"__ow_path":    call.path,
	}
	if user != nil {
		in["__ow_user"] = user.Namespace
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if raw {
		in["__ow_query"] = r.URL.RawQuery
		switch {
		case len(body) == 0:
			in["__ow_body"] = ""
		case mt == "application/json" || binaryMedia(mt, params, r.Header.Get("Content-Type") == ""):
			// OpenWhisk base64-encodes JSON bodies in raw mode too.
			in["__ow_body"] = base64.StdEncoding.EncodeToString(body)
		default:
			in["__ow_body"] = string(body)
		}
		for k, v := range call.pathParams {
			in[k] = v
		}
		return json.Marshal(in)
	}

	req := map[string]json.RawMessage{}
	for k, vs := range r.URL.Query() {
		req[k], _ = json.Marshal(vs[len(vs)-1]) // the last value wins
	}
	if len(body) > 0 {
		switch {
		case jsonMedia(mt):
			v := json.RawMessage(bytes.TrimSpace(body))
			if !json.Valid(v) {
				var probe any
				err := json.Unmarshal(v, &probe)
				return nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\n%v", err)
			}
			var obj map[string]json.RawMessage
			if v[0] == '{' && json.Unmarshal(v, &obj) == nil {
				for k, fv := range obj {
					req[k] = fv
				}
			} else {
				in["__ow_body"] = v
			}
		case mt == "application/x-www-form-urlencoded":
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\n%v", err)
			}
			for k, vs := range form {
				req[k], _ = json.Marshal(vs[len(vs)-1])
			}
		case binaryMedia(mt, params, r.Header.Get("Content-Type") == ""):
			in["__ow_body"] = base64.StdEncoding.EncodeToString(body)
		default:
			in["__ow_body"] = string(body)
		}
	}
	for k, v := range call.pathParams {
		req[k], _ = json.Marshal(v)
	}
	final := a.Annotations.IsTrue("final")
	for k := range req {
		_, isBound := bound.Get(k)
		if isBound && final || isReserved(k) {
			return nil, gust.Errorf(gust.KindInvalid, gust.MsgReservedParam)
		}
	}
	for k, v := range req {
		in[k] = v
	}
	return json.Marshal(in)
}

func isReserved(k string) bool {
	for _, r := range webReserved {
		if k == r {
			return true
		}
	}
	return false
}

// webHeaders returns the request headers for __ow_headers: lower-case
// names, repeated values joined with ", ", and the host. Valid Gust
// credentials (user is their identity) are left out: the platform consumed
// them (the action sees __ow_user), and the action may belong to another
// namespace than the caller, who must not hand it their key. Any other
// Authorization (the action's own scheme) passes through.
func webHeaders(r *http.Request, user *store.Identity) map[string]string {
	out := make(map[string]string, len(r.Header)+1)
	for k, vs := range r.Header {
		out[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	if r.Host != "" {
		out["host"] = r.Host
	}
	if user != nil {
		delete(out, "authorization")
	}
	return out
}

// jsonMedia reports a JSON-family media type: application/json or +json.
func jsonMedia(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// binaryMedia reports whether content of media type mt is binary, to be
// base64-encoded in parameters and decoded from results. Text is text/*,
// anything with a charset, and the textual application types (JSON and
// XML families, JavaScript, forms); everything else is binary, as in
// OpenWhisk. A body without a Content-Type (missing) is binary
// (application/octet-stream).
func binaryMedia(mt string, params map[string]string, missing bool) bool {
	if missing || mt == "" {
		return true
	}
	if _, ok := params["charset"]; ok {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return false
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-javascript", "application/x-www-form-urlencoded", "application/graphql":
		return false
	}
	return true
}

// projectField returns the value at the path of object fields in v, or
// nil when there is none.
func projectField(v json.RawMessage, path []string) json.RawMessage {
	for _, f := range path {
		v = bytes.TrimSpace(v)
		var obj map[string]json.RawMessage
		if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &obj) != nil {
			return nil
		}
		next, ok := obj[f]
		if !ok {
			return nil
		}
		v = next
	}
	return v
}
