package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
)

// Managed APIs (reference/openwhisk.md §7). OpenWhisk has no route API:
// `wsk api` calls the authenticated web actions
// whisk.system/apimgmt/{createApi,getApi,deleteApi}.http, which Gust answers
// natively. These methods send what wsk sends.

// APIAccessToken is the accesstoken wsk sends when its props file has no
// APIGW_ACCESS_TOKEN. Gust ignores it; it is sent for servers that look.
const APIAccessToken = "DUMMY TOKEN"

// APIVerbs are the verbs a route may have, as wsk accepts them.
var APIVerbs = []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// APIResponseTypes are the web action extensions a route may answer with.
var APIResponseTypes = []string{"json", "http", "html", "svg", "text"}

// GatewayError is a failure reported by the API management actions. They
// answer 502 with {"error": message} and no "code", as OpenWhisk's
// actions do: the message is the whole story.
type GatewayError struct {
	Status  int
	Message string
}

func (e *GatewayError) Error() string { return e.Message }

// APIRoute is one route to create: BasePath RelPath Verb -> Action.
type APIRoute struct {
	BasePath string // "/hello"
	RelPath  string // "/world", "/books/{id}"
	Verb     string // GET, POST … (any case)
	// Action is the web action's name: "hello", "pkg/hello" or
	// "/ns/[pkg/]hello" (relative names are in the client's namespace).
	Action string
	// ResponseType is the extension the action answers with: json (the
	// default when empty), http, html, svg or text.
	ResponseType string
	APIName      string // optional; the server uses the base path by default
	// SecureKey is the action's require-whisk-auth value, which wsk passes
	// on so a gateway can send it; nil when the action has none.
	SecureKey json.RawMessage
}

// APIValue is the server's view of one API (base path): the createApi
// answer and the "value" of each getApi entry.
type APIValue struct {
	Namespace string `json:"namespace"`
	// GatewayURL is where the API is served: routes are at GatewayURL + relpath.
	GatewayURL string          `json:"gwApiUrl"`
	Activated  bool            `json:"gwApiActivated"`
	TenantID   string          `json:"tenantId"`
	APIDoc     json.RawMessage `json:"apidoc"` // the Swagger 2.0 document
}

// APIItem is one entry of a getApi answer.
type APIItem struct {
	ID    string    `json:"id"`
	Key   string    `json:"key"`
	Value *APIValue `json:"value"`
}

// APIOperation is one route of an API as its Swagger document describes it.
type APIOperation struct {
	BasePath string // "/hello"
	RelPath  string // "/world"
	Verb     string // upper case: "GET"
	APIName  string // info.title
	Action   string // "/ns/[pkg/]name", "" if the operation names none
	URL      string // where the route is served: gwApiUrl + relpath
}

// Operations lists the routes of the API's Swagger document, sorted by
// relative path and verb.
func (v *APIValue) Operations() ([]APIOperation, error) {
	var doc struct {
		BasePath string `json:"basePath"`
		Info     struct {
			Title string `json:"title"`
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	raw := v.APIDoc
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("client: the API has no apidoc")
	}
	// A document stored from a file may come back as a JSON string.
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("client: decode apidoc: %w", err)
	}
	base := strings.TrimSuffix(v.GatewayURL, "/")
	var out []APIOperation
	for rel, ops := range doc.Paths {
		for verb, opRaw := range ops {
			verb = strings.ToUpper(verb)
			if !slices.Contains(APIVerbs, verb) {
				continue // "parameters" and extensions sit beside the operations
			}
			var op struct {
				X *struct {
					Namespace string `json:"namespace"`
					Package   string `json:"package"`
					Action    string `json:"action"`
				} `json:"x-openwhisk"`
			}
			_ = json.Unmarshal(opRaw, &op) // a malformed operation still lists, without its action
			o := APIOperation{BasePath: doc.BasePath, RelPath: rel, Verb: verb, APIName: doc.Info.Title, URL: base + rel}
			if x := op.X; x != nil && x.Action != "" {
				o.Action = gust.Path{Namespace: x.Namespace, Package: x.Package, Name: x.Action}.String()
			}
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.RelPath < b.RelPath || a.RelPath == b.RelPath && a.Verb < b.Verb
	})
	return out, nil
}

// apiQuery returns the query parameters every apimgmt call carries.
func (c *Client) apiQuery() url.Values {
	uuid, _, _ := strings.Cut(c.auth, ":")
	return url.Values{"accesstoken": {APIAccessToken}, "spaceguid": {uuid}}
}

// apimgmt calls the management action op ("createApi.http" …) and decodes
// the answer into out.
func (c *Client) apimgmt(ctx context.Context, method, op string, q url.Values, in, out any) error {
	resp, data, err := c.send(ctx, method, []string{"web", "whisk.system", "apimgmt", op}, q, in)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var v struct {
			Error json.RawMessage `json:"error"`
			Code  json.RawMessage `json:"code"`
		}
		if resp.StatusCode == http.StatusBadGateway && json.Unmarshal(data, &v) == nil && len(v.Error) > 0 && len(v.Code) == 0 {
			return &GatewayError{Status: resp.StatusCode, Message: jsonText(v.Error)}
		}
		return decodeError(resp.StatusCode, data)
	}
	return c.decode(data, out)
}

// apiDoc is the "apidoc" of a createApi request, as wsk builds it.
type apiDoc struct {
	Namespace       string         `json:"namespace,omitempty"`
	APIName         string         `json:"apiName,omitempty"`
	GatewayBasePath string         `json:"gatewayBasePath,omitempty"`
	GatewayPath     string         `json:"gatewayPath,omitempty"`
	GatewayMethod   string         `json:"gatewayMethod,omitempty"`
	ID              string         `json:"id,omitempty"`
	Swagger         string         `json:"swagger,omitempty"`
	Action          *apiDocAction  `json:"action,omitempty"`
	PathParameters  []apiPathParam `json:"pathParameters,omitempty"`
}

type apiDocAction struct {
	Name          string          `json:"name,omitempty"`
	Namespace     string          `json:"namespace,omitempty"`
	BackendMethod string          `json:"backendMethod,omitempty"`
	BackendURL    string          `json:"backendUrl,omitempty"`
	AuthKey       string          `json:"authkey,omitempty"`
	SecureKey     json.RawMessage `json:"secureKey,omitempty"`
}

type apiPathParam struct {
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Type        string `json:"type,omitempty"`
}

// CreateAPI creates the route r (adding it to the API of its base path) and
// returns the API.
func (c *Client) CreateAPI(ctx context.Context, r APIRoute) (*APIValue, error) {
	verb := strings.ToUpper(r.Verb)
	// wsk qualifies the action with the configured namespace ("_" by
	// default) and keeps a package in the name: {"name":"pkg/hello"}.
	p, err := c.Qualify(r.Action)
	if err != nil {
		return nil, err
	}
	ns, name := p.Namespace, p.Rel(false)
	urlPkg := p.Package
	if urlPkg == "" {
		urlPkg = "default"
	}
	backend := c.url([]string{"web", ns, urlPkg, p.Name + ".http"}, nil).String()
	doc := apiDoc{
		Namespace:       c.ns,
		APIName:         r.APIName,
		GatewayBasePath: r.BasePath,
		GatewayPath:     r.RelPath,
		GatewayMethod:   verb,
		Action: &apiDocAction{Name: name, Namespace: ns, BackendMethod: verb, BackendURL: backend,
			AuthKey: c.auth, SecureKey: r.SecureKey},
	}
	// wsk leaves the id out when the first argument is an API name rather
	// than a base path.
	if strings.HasPrefix(r.BasePath, "/") {
		doc.ID = "API:" + c.ns + ":" + r.BasePath
	}
	for _, p := range apiPathParams(r.RelPath) {
		doc.PathParameters = append(doc.PathParameters, apiPathParam{Name: p, In: "path",
			Description: "Default description for '" + p + "'", Required: true, Type: "string"})
	}
	return c.createAPI(ctx, doc, r.ResponseType)
}

// CreateAPIFromSwagger creates or replaces a whole API from a Swagger 2.0
// document (JSON) whose operations name their actions in x-openwhisk, as
// `wsk api create --config-file` does. responseType applies to operations
// whose x-openwhisk url has no extension; empty means json.
func (c *Client) CreateAPIFromSwagger(ctx context.Context, swagger []byte, responseType string) (*APIValue, error) {
	if !json.Valid(swagger) {
		return nil, errors.New("client: the swagger document is not valid JSON")
	}
	return c.createAPI(ctx, apiDoc{Namespace: c.ns, Swagger: string(swagger)}, responseType)
}

func (c *Client) createAPI(ctx context.Context, doc apiDoc, responseType string) (*APIValue, error) {
	if responseType == "" {
		responseType = "json"
	}
	q := c.apiQuery()
	q.Set("responsetype", responseType)
	var out APIValue
	if err := c.apimgmt(ctx, http.MethodPost, "createApi.http", q, map[string]any{"apidoc": doc}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAPIs returns a page of the APIs of the caller's namespace.
func (c *Client) ListAPIs(ctx context.Context, opts ListOptions) ([]APIItem, error) {
	q := c.apiQuery()
	q.Set("limit", strconv.Itoa(opts.Limit))
	q.Set("skip", strconv.Itoa(opts.Skip))
	return c.getAPIs(ctx, q)
}

// GetAPI returns the API whose base path ("/hello") or name is basePath;
// none when there is no such API. relPath and verb, when not empty, are
// sent along as wsk does (`wsk api list BASE REL VERB`); the server answers
// the whole API and the caller picks the operations.
func (c *Client) GetAPI(ctx context.Context, basePath, relPath, verb string) ([]APIItem, error) {
	q := c.apiQuery()
	q.Set("basepath", basePath)
	if relPath != "" {
		q.Set("relpath", relPath)
	}
	if verb != "" {
		q.Set("operation", strings.ToUpper(verb))
	}
	return c.getAPIs(ctx, q)
}

func (c *Client) getAPIs(ctx context.Context, q url.Values) ([]APIItem, error) {
	var out struct {
		APIs []APIItem `json:"apis"`
	}
	if err := c.apimgmt(ctx, http.MethodGet, "getApi.http", q, nil, &out); err != nil {
		return nil, err
	}
	for _, it := range out.APIs {
		if it.Value == nil || len(it.Value.APIDoc) == 0 {
			return nil, fmt.Errorf("client: getApi answered an API without its apidoc (%q)", it.ID)
		}
	}
	return out.APIs, nil
}

// DeleteAPI deletes the API of basePath (a base path or an API name), or
// only its routes of relPath, or only the one of relPath and verb.
func (c *Client) DeleteAPI(ctx context.Context, basePath, relPath, verb string) error {
	if verb != "" && relPath == "" {
		return errors.New("client: deleting an operation needs its relative path")
	}
	q := c.apiQuery()
	q.Set("basepath", basePath)
	if relPath != "" {
		q.Set("relpath", relPath)
	}
	if verb != "" {
		q.Set("operation", strings.ToUpper(verb))
	}
	return c.apimgmt(ctx, http.MethodDelete, "deleteApi.http", q, nil, nil)
}

// WebActionURL returns the URL of a web action: namespace is the action's
// "namespace" field as the server reports it ("guest" or "guest/pkg") and
// the package of an action in none is "default". Each segment is escaped.
func (c *Client) WebActionURL(namespace, name string) string {
	ns, pkg, _ := strings.Cut(namespace, "/")
	if pkg == "" {
		pkg = "default"
	}
	return c.url([]string{"web", ns, pkg, name}, nil).String()
}

// Qualify returns the path of an entity name the way wsk qualifies names:
// relative names get the client's namespace, which may be "_" (so "hello"
// is "/_/hello").
func (c *Client) Qualify(name string) (gust.Path, error) {
	p, err := gust.ParsePath(name, c.ns)
	if err != nil {
		return gust.Path{}, fmt.Errorf("client: %w", err)
	}
	return p, nil
}

// apiPathParams lists the distinct {name} segments of a relative path.
func apiPathParams(rel string) []string {
	var out []string
	for _, seg := range strings.Split(rel, "/") {
		if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' && !slices.Contains(out, seg[1:len(seg)-1]) {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}
