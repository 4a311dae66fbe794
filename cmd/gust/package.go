package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

func packageCommands() []*cliCommand {
	put := append(paramFlags(),
		cliFlag{long: "shared", kind: flagString, arg: "yes|no", help: "publish the package: other namespaces may use and bind to it"})
	return []*cliCommand{
		{group: "package", name: "create", args: "NAME", minArgs: 1, maxArgs: 1, flags: put,
			summary: "create a package; its parameters are defaults of its actions",
			run:     func(ctx context.Context, c *cliCtx) error { return runPackagePut(ctx, c, false) }},
		{group: "package", name: "update", args: "NAME", minArgs: 1, maxArgs: 1, flags: put,
			summary: "update a package, or create it; what is not given keeps its value",
			run:     func(ctx context.Context, c *cliCtx) error { return runPackagePut(ctx, c, true) }},
		{group: "package", name: "bind", args: "PACKAGE NAME", minArgs: 2, maxArgs: 2, flags: paramFlags(),
			summary: "bind NAME to PACKAGE (e.g. /whisk.system/alarms) with parameters of its own", run: runPackageBind},
		{group: "package", name: "get", args: "NAME", minArgs: 1, maxArgs: 1, summary: "show a package, its actions and feeds", run: runPackageGet},
		{group: "package", name: "list", args: "[NAMESPACE]", maxArgs: 1, flags: []cliFlag{flagListLimit, flagListSkip},
			summary: "list packages (of another namespace: the shared ones)", run: runPackageList},
		{group: "package", name: "delete", args: "NAME", minArgs: 1, maxArgs: 1,
			flags:   []cliFlag{{long: "force", kind: flagBool, help: "delete the package's actions too"}},
			summary: "delete a package", run: runPackageDelete},
	}
}

// entityBody reads the flags shared by package create, update and bind.
func entityBody(a *cliArgs) (client.EntityPut, error) {
	var body client.EntityPut
	var err error
	if body.Parameters, err = buildParams(a.strs("param-file"), a.pairs("param")); err != nil {
		return body, err
	}
	if body.Annotations, err = buildParams(a.strs("annotation-file"), a.pairs("annotation")); err != nil {
		return body, err
	}
	if a.has("shared") {
		switch strings.ToLower(a.str("shared")) {
		case "yes", "true":
			body.Publish = ptrTo(true)
		case "no", "false":
			body.Publish = ptrTo(false)
		default:
			return body, usagef("invalid value %q for --shared: want yes or no", a.str("shared"))
		}
	}
	return body, nil
}

func ptrTo[T any](v T) *T { return &v }

func runPackagePut(ctx context.Context, c *cliCtx, update bool) error {
	name := c.args.pos[0]
	body, err := entityBody(c.args)
	if err != nil {
		return err
	}
	return putPackage(ctx, c, name, body, update)
}

func putPackage(ctx context.Context, c *cliCtx, name string, body client.EntityPut, update bool) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	verb, done := "create", "created"
	if update {
		verb, done = "update", "updated"
	}
	if body.Binding != nil {
		verb, done = "bind", "bound"
	}
	var raw json.RawMessage
	if _, err := cl.WithBody(&raw).PutPackage(ctx, name, body, update); err != nil {
		return fmt.Errorf("Unable to %s package '%s': %w", verb, name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: %s package %s\n", done, name)
	return nil
}

func runPackageBind(ctx context.Context, c *cliCtx) error {
	target, name := c.args.pos[0], c.args.pos[1]
	body, err := entityBody(c.args)
	if err != nil {
		return err
	}
	// "/ns/pkg", or "pkg" of the caller's namespace.
	ns, pkg := "_", target
	if rest, ok := strings.CutPrefix(target, "/"); ok {
		var found bool
		if ns, pkg, found = strings.Cut(rest, "/"); !found || strings.Contains(pkg, "/") {
			return usagef("invalid package %q: want /NAMESPACE/PACKAGE or PACKAGE", target)
		}
	}
	body.Binding = &gust.Binding{Namespace: ns, Name: pkg}
	return putPackage(ctx, c, name, body, false)
}

func runPackageGet(ctx context.Context, c *cliCtx) error {
	return runGetOne(ctx, c, "package", func(ctx context.Context, cl *client.Client, name string) error {
		_, err := cl.GetPackage(ctx, name)
		return err
	})
}

func runPackageList(ctx context.Context, c *cliCtx) error {
	ns := ""
	if len(c.args.pos) == 1 {
		ns = strings.Trim(c.args.pos[0], "/")
	}
	list := func(ctx context.Context, cl *client.Client, o client.ListOptions) ([]client.PackageSummary, error) {
		return cl.ListPackages(ctx, ns, o)
	}
	return runListRows(ctx, c, "packages", list, func(_ *client.Client, p *client.PackageSummary) string {
		kind := ""
		if p.Binding != nil {
			kind = fmt.Sprintf("binding of /%s/%s", p.Binding.Namespace, p.Binding.Name)
		}
		return fmt.Sprintf("/%s/%s\t%s\t%s", p.Namespace, p.Name, shared(p.Publish), kind)
	})
}

func runPackageDelete(ctx context.Context, c *cliCtx) error {
	return runDeleteOne(ctx, c, "package", func(ctx context.Context, cl *client.Client, name string) error {
		return cl.DeletePackage(ctx, name, c.args.bool("force"))
	})
}
