package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gust-faas/gust/internal/client"
)

// `gust api`: managed API routes (docs/web.md, reference/openwhisk.md §7).
// The commands send what `wsk api` sends to the apimgmt entry points.

func apiCommands() []*cliCommand {
	return []*cliCommand{
		{group: "api", name: "create", args: "[BASE] REL VERB ACTION", minArgs: 0, maxArgs: 4,
			summary: "serve VERB BASE/REL with the web action ACTION (or a whole API from --config-file)",
			flags: []cliFlag{
				{long: "response-type", kind: flagString, arg: "TYPE", help: "how the action's result becomes the response: json (default), http, text, html, svg"},
				{long: "apiname", short: "n", kind: flagString, arg: "NAME", help: "name of the API (default BASE)"},
				{long: "config-file", short: "c", kind: flagString, arg: "FILE", help: "create or replace a whole API from a Swagger 2.0 JSON document whose operations carry x-openwhisk"},
			},
			run: runAPICreate},
		{group: "api", name: "list", args: "[BASE [REL [VERB]]]", maxArgs: 3,
			summary: "list API routes, all or those of a base path (or API name), relative path and verb",
			flags: []cliFlag{
				{long: "limit", short: "l", kind: flagInt, arg: "N", help: "list at most N APIs (default 30)"},
				{long: "skip", short: "s", kind: flagInt, arg: "N", help: "skip the first N APIs"},
			},
			run: runAPIList},
		{group: "api", name: "get", args: "BASE", minArgs: 1, maxArgs: 1,
			summary: "show the Swagger document of the API of a base path (or API name)",
			flags:   []cliFlag{{long: "full", short: "f", kind: flagBool, help: "show the whole API: URL, namespace and document"}},
			run:     runAPIGet},
		{group: "api", name: "delete", args: "BASE [REL [VERB]]", minArgs: 1, maxArgs: 3,
			summary: "delete an API, or its routes of a relative path, or one route",
			run:     runAPIDelete},
	}
}

// checkAPIPath checks that a base or relative path starts with a slash.
func checkAPIPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return usagef("'%s' must begin with '/'.", p)
	}
	return nil
}

// checkAPIVerb returns the verb in upper case, or a usage error.
func checkAPIVerb(v string) (string, error) {
	u := strings.ToUpper(v)
	if !slices.Contains(client.APIVerbs, u) {
		return "", usagef("'%s' is not a valid API verb: want one of %s", v, strings.Join(client.APIVerbs, ", "))
	}
	return u, nil
}

func runAPICreate(ctx context.Context, c *cliCtx) error {
	a := c.args
	respType := strings.ToLower(a.str("response-type"))
	if respType == "" {
		respType = "json"
	}
	if !slices.Contains(client.APIResponseTypes, respType) {
		return usagef("invalid value %q for --response-type: want one of %s", a.str("response-type"), strings.Join(client.APIResponseTypes, ", "))
	}
	if a.has("config-file") {
		if len(a.pos) > 0 || a.has("apiname") {
			return usagef("--config-file takes the whole API from the file: give no BASE REL VERB ACTION nor --apiname")
		}
		return runAPICreateFromFile(ctx, c, a.str("config-file"), respType)
	}
	if len(a.pos) < 3 {
		return usagef("usage: gust api create [BASE] REL VERB ACTION [flags], or gust api create --config-file FILE (run 'gust api create --help')")
	}
	// As in wsk, BASE may be left out: the API is then at "/".
	args := a.pos
	base := "/"
	if len(args) == 4 {
		base, args = args[0], args[1:]
		if err := checkAPIPath(base); err != nil {
			return err
		}
		if len(apiPathParams(base)) > 0 {
			return usagef("The base path '%s' cannot have parameters. Only the relative path supports path parameters.", base)
		}
	}
	rel, verbIn, action := args[0], args[1], args[2]
	if err := checkAPIPath(rel); err != nil {
		return err
	}
	// As wsk, which refuses it before calling the server (the server
	// refuses it too).
	if respType != "http" && len(apiPathParams(rel)) > 0 {
		return usagef("A response type of 'http' is required when using path parameters.")
	}
	verb, err := checkAPIVerb(verbIn)
	if err != nil {
		return err
	}

	cl, err := c.client()
	if err != nil {
		return err
	}
	// Only a web action can serve a route: say so before the server does,
	// with the fix.
	act, err := cl.GetAction(ctx, action, false)
	if err != nil {
		return fmt.Errorf("Unable to create API: unable to get action '%s': %w", action, err)
	}
	if !act.Annotations.IsTrue("web-export") {
		return fmt.Errorf("Unable to create API: action '%s' is not a web action; make it one with 'gust action update %s --web true'", action, action)
	}
	route := client.APIRoute{BasePath: base, RelPath: rel, Verb: verb, Action: action, ResponseType: respType, APIName: a.str("apiname")}
	if v, ok := act.Annotations.Get("require-whisk-auth"); ok {
		route.SecureKey = v
	}
	var raw json.RawMessage
	api, err := cl.WithBody(&raw).CreateAPI(ctx, route)
	if err != nil {
		return fmt.Errorf("Unable to create API: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	// The action as wsk prints it: "/_/hello" for a relative name.
	p, err := cl.Qualify(action)
	if err != nil {
		return err // GetAction accepted the name
	}
	fmt.Fprintf(c.stdout, "ok: created API %s%s %s for action %s\n%s%s\n",
		strings.TrimSuffix(base, "/"), rel, verb, p, strings.TrimSuffix(api.GatewayURL, "/"), rel)
	return nil
}

// runAPICreateFromFile is `api create --config-file FILE`.
func runAPICreateFromFile(ctx context.Context, c *cliCtx, file, respType string) error {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".yaml", ".yml":
		return fmt.Errorf("Unable to create API: %s: only JSON Swagger documents are supported", file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("Unable to create API: %w", err)
	}
	var doc struct {
		Swagger  string          `json:"swagger"`
		BasePath string          `json:"basePath"`
		Info     json.RawMessage `json:"info"`
		Paths    json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("Unable to create API: error parsing swagger file '%s': %v", file, err)
	}
	if doc.Swagger == "" || doc.BasePath == "" || len(doc.Info) == 0 || len(doc.Paths) == 0 {
		return fmt.Errorf("Unable to create API: swagger file '%s' is invalid (missing basePath, info, paths, or swagger fields)", file)
	}
	if !strings.HasPrefix(doc.BasePath, "/") {
		return fmt.Errorf("Unable to create API: swagger file '%s': basePath must start with a leading slash (/)", file)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	api, err := cl.WithBody(&raw).CreateAPIFromSwagger(ctx, data, respType)
	if err != nil {
		return fmt.Errorf("Unable to create API: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	ops, err := api.Operations()
	if err != nil {
		return fmt.Errorf("API created, but its answer cannot be read: %w", err)
	}
	for _, op := range ops {
		fmt.Fprintf(c.stdout, "ok: created API %s%s %s", strings.TrimSuffix(op.BasePath, "/"), op.RelPath, op.Verb)
		if op.Action != "" {
			fmt.Fprintf(c.stdout, " for action %s", op.Action)
		}
		fmt.Fprintf(c.stdout, "\n%s\n", op.URL)
	}
	return nil
}

func runAPIList(ctx context.Context, c *cliCtx) error {
	a := c.args
	var base, rel, verb string
	if len(a.pos) > 0 {
		base = a.pos[0]
	}
	if len(a.pos) > 1 {
		rel = a.pos[1]
		if err := checkAPIPath(rel); err != nil {
			return err
		}
	}
	if len(a.pos) > 2 {
		var err error
		if verb, err = checkAPIVerb(a.pos[2]); err != nil {
			return err
		}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	cl = cl.WithBody(&raw)
	var items []client.APIItem
	if base == "" {
		items, err = cl.ListAPIs(ctx, client.ListOptions{Limit: a.int("limit", 30), Skip: a.int("skip", 0)})
	} else {
		items, err = cl.GetAPI(ctx, base, rel, verb)
	}
	if err != nil {
		return fmt.Errorf("Unable to obtain the API list: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	var ops []client.APIOperation
	for _, it := range items {
		o, err := it.Value.Operations()
		if err != nil {
			return fmt.Errorf("Unable to obtain the API list: %w", err)
		}
		for _, op := range o {
			if (rel == "" || op.RelPath == rel) && (verb == "" || op.Verb == verb) {
				ops = append(ops, op)
			}
		}
	}
	return printAPIList(c.stdout, ops)
}

// printAPIList writes the table of `api list`: one row per route.
func printAPIList(w io.Writer, ops []client.APIOperation) error {
	fmt.Fprintln(w, "ok: APIs")
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "Action\tVerb\tAPI Name\tURL")
	for _, op := range ops {
		action := op.Action
		if action == "" {
			action = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", action, strings.ToLower(op.Verb), op.APIName, op.URL)
	}
	return tw.Flush()
}

func runAPIGet(ctx context.Context, c *cliCtx) error {
	base := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	items, err := cl.WithBody(&raw).GetAPI(ctx, base, "", "")
	if err != nil {
		return fmt.Errorf("Unable to get API '%s': %w", base, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	if len(items) == 0 {
		if strings.HasPrefix(base, "/") {
			return fmt.Errorf("API does not exist for basepath %s", base)
		}
		return fmt.Errorf("API does not exist for API name %s", base)
	}
	if c.args.bool("full") {
		b, err := json.Marshal(items[0].Value)
		if err != nil {
			return err
		}
		return printJSON(c.stdout, b)
	}
	doc := items[0].Value.APIDoc
	var s string
	if json.Unmarshal(doc, &s) == nil { // a document stored from a file, as a string
		doc = json.RawMessage(s)
	}
	return printJSON(c.stdout, doc)
}

func runAPIDelete(ctx context.Context, c *cliCtx) error {
	a := c.args
	base := a.pos[0]
	var rel, verb string
	if len(a.pos) > 1 {
		rel = a.pos[1]
		if err := checkAPIPath(rel); err != nil {
			return err
		}
	}
	if len(a.pos) > 2 {
		var err error
		if verb, err = checkAPIVerb(a.pos[2]); err != nil {
			return err
		}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := cl.WithBody(&raw).DeleteAPI(ctx, base, rel, verb); err != nil {
		return fmt.Errorf("Unable to delete API: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	switch {
	case rel == "":
		fmt.Fprintf(c.stdout, "ok: deleted API %s\n", base)
	case verb == "":
		fmt.Fprintf(c.stdout, "ok: deleted %s from %s\n", rel, base)
	default:
		fmt.Fprintf(c.stdout, "ok: deleted %s %s from %s\n", rel, verb, base)
	}
	return nil
}

// apiPathParams lists the {name} segments of a path.
func apiPathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if len(seg) > 2 && strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}
