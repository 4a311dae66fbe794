package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// publicRoutes are the only routes reachable without credentials: the info
// and ping routes, web actions, managed API routes (which run web actions)
// and the catch-all that answers 404.
var publicRoutes = map[string]bool{
	"GET /{$}":            true,
	"GET /ping":           true,
	"GET /api/v1":         true,
	"GET /api/v1/{$}":     true,
	"/api/v1/web/":        true,
	"/api/{ns}/{rest...}": true,
	"/api/{ns}":           true, // answers 404 only
	"/":                   true,
}

// registration is one s.mux.Handle call found in the package source.
type registration struct {
	pattern string
	wrapper string   // "public" or "auth"
	methods []string // the methods{...} keys of an auth route
}

// routeTable reads every s.mux.Handle(pattern, s.public(...)|s.auth(methods{...}))
// of the package, so a route added anywhere is checked without a list to
// keep up to date.
func routeTable(t *testing.T) []registration {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{"webPrefix": "/api/v1/web/"}
	var out []registration
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Handle" {
				return true
			}
			if x, ok := sel.X.(*ast.SelectorExpr); !ok || x.Sel.Name != "mux" {
				return true
			}
			pattern, ok := stringValue(call.Args[0], consts)
			if !ok {
				t.Fatalf("%s: route pattern %s is not a constant this test understands", fset.Position(call.Pos()), src[call.Args[0].Pos()-1:call.Args[0].End()-1])
			}
			reg := registration{pattern: pattern}
			wrap, ok := call.Args[1].(*ast.CallExpr)
			if ok {
				if ws, ok := wrap.Fun.(*ast.SelectorExpr); ok {
					reg.wrapper = ws.Sel.Name
				}
			}
			if reg.wrapper == "auth" && len(wrap.Args) == 1 {
				if lit, ok := wrap.Args[0].(*ast.CompositeLit); ok {
					for _, e := range lit.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if m, ok := stringValue(kv.Key, consts); ok {
								reg.methods = append(reg.methods, m)
							}
						}
					}
				}
			}
			out = append(out, reg)
			return true
		})
	}
	if len(out) < 10 {
		t.Fatalf("found only %d routes: the source scan is broken", len(out))
	}
	return out
}

func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.BinaryExpr:
		a, ok1 := stringValue(e.X, consts)
		b, ok2 := stringValue(e.Y, consts)
		return a + b, ok1 && ok2 && e.Op == token.ADD
	}
	return "", false
}

// TestOnlyWebRoutesArePublic walks the route table: every route but the
// public ones answers 401 without credentials, for each of its methods.
func TestOnlyWebRoutesArePublic(t *testing.T) {
	n := startWebNode(t)
	fill := strings.NewReplacer("{ns}", "guest", "{rest...}", "x", "{id}", "0123456789abcdef0123456789abcdef",
		"{op}", "getApi.http", "{$}", "")
	for _, reg := range routeTable(t) {
		if reg.wrapper != "auth" {
			if !publicRoutes[reg.pattern] {
				t.Errorf("route %q is registered without authentication (%s)", reg.pattern, reg.wrapper)
			}
			continue
		}
		if publicRoutes[reg.pattern] {
			t.Errorf("public route %q now needs authentication: update publicRoutes", reg.pattern)
		}
		if len(reg.methods) == 0 {
			t.Errorf("route %q: no methods found", reg.pattern)
		}
		path := fill.Replace(reg.pattern)
		if method, p, ok := strings.Cut(path, " "); ok {
			reg.methods, path = []string{method}, p
		}
		for _, m := range reg.methods {
			r := n.send(m, path, nil, nil)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d, want 401", m, path, r.status)
			}
		}
	}
	// The catch-all reveals nothing.
	if r := n.send("GET", "/api/v2/anything", nil, nil); r.status != 404 {
		t.Errorf("catch-all: %d", r.status)
	}
}
