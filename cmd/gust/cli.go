package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gust-faas/gust/internal/client"
)

// cliCommand is one `gust GROUP NAME` command of the API client.
type cliCommand struct {
	group, name      string
	args             string // positional synopsis: "NAME [FILE]"
	minArgs, maxArgs int
	summary          string
	flags            []cliFlag
	run              func(context.Context, *cliCtx) error
}

// cliCtx is what a command runs with.
type cliCtx struct {
	stdout, stderr io.Writer
	args           *cliArgs
}

// cliGlobalFlags are accepted anywhere on the line by every command.
var cliGlobalFlags = []cliFlag{
	{long: "apihost", kind: flagString, arg: "HOST", help: "API host: host[:port] (https) or an http(s) URL; env GUST_APIHOST"},
	{long: "auth", short: "u", kind: flagString, arg: "UUID:KEY", help: "credentials; env GUST_AUTH"},
	{long: "json", kind: flagBool, help: "print the JSON the server sends, for scripts"},
	{long: "insecure", short: "i", kind: flagBool, help: "skip TLS certificate verification"},
	{long: "help", short: "h", kind: flagBool, help: "show this help"},
}

// cliGroup is the first word of a client command.
type cliGroup struct{ name, summary string }

var cliGroups = []cliGroup{
	{"action", "create, update, invoke and inspect actions"},
	{"activation", "inspect the records of action runs"},
	{"package", "group actions, share them and bind to shared packages"},
	{"trigger", "create triggers, with feeds (alarms, MQTT, NATS), and fire them"},
	{"rule", "connect triggers to actions"},
	{"api", "serve REST routes (VERB /base/path) with web actions"},
	{"namespace", "list the namespaces of your credentials"},
	{"property", "save and show the API host and credentials"},
	{"dlq", "list, redrive and discard invocations that failed every attempt"},
	{"runtimes", "list the kinds this node runs and their interpreters"},
	{"admin", "create namespaces and set their limits (administrator credential: DATA_DIR/admin.auth)"},
}

// cliCommands are all the client commands, in the order help lists them.
var cliCommands = slices.Concat(actionCommands(), activationCommands(), packageCommands(), triggerCommands(), ruleCommands(), apiCommands(), dlqCommands(), adminCommands(), []*cliCommand{
	{group: "namespace", name: "list", summary: "list the namespaces of your credentials", run: runNamespaceList},
	{group: "runtimes", name: "list", summary: "list the kinds this node runs, with their interpreters", run: runRuntimes},
	{group: "property", name: "set", summary: "save settings in the config file ($GUST_CONFIG_FILE or ~/.gust/config)",
		flags: []cliFlag{
			{long: "apihost", kind: flagString, arg: "HOST", help: "API host: host[:port] (https) or an http(s) URL"},
			{long: "auth", short: "u", kind: flagString, arg: "UUID:KEY", help: "credentials"},
			{long: "namespace", kind: flagString, arg: "NAMESPACE", help: "namespace for relative names (default _, your own)"},
		},
		run: runPropertySet},
	{group: "property", name: "get", summary: "show the settings in effect",
		flags: []cliFlag{
			{long: "apihost", kind: flagBool, help: "show only the API host"},
			{long: "auth", short: "u", kind: flagBool, help: "show only the credentials"},
			{long: "namespace", kind: flagBool, help: "show only the namespace"},
		},
		run: runPropertyGet},
})

// isCLIGroup reports whether word starts an API client command; leading
// global flags (`gust --json action list`) count too.
func isCLIGroup(word string) bool {
	if strings.HasPrefix(word, "-") && word != "-h" && word != "--help" {
		return true
	}
	for _, g := range cliGroups {
		if g.name == word {
			return true
		}
	}
	return false
}

// runCLI runs `gust GROUP COMMAND [args] [flags]`; global flags may come anywhere.
func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	group, verb, rest := splitCommand(args)
	if group == "" {
		return usagef("missing command (run 'gust help')")
	}
	if group == "runtimes" && verb == "" {
		verb = "list" // a group of one command: `gust runtimes` is `gust runtimes list`
	}
	if !slices.ContainsFunc(cliGroups, func(g cliGroup) bool { return g.name == group }) {
		return usagef("unknown command %q (run 'gust help')", group)
	}
	if verb == "" || verb == "help" {
		if verb == "help" || slices.Contains(rest, "-h") || slices.Contains(rest, "--help") {
			printGroupHelp(stdout, group)
			return nil
		}
		printGroupHelp(stderr, group)
		return usagef("'gust %s' needs a command", group)
	}
	i := slices.IndexFunc(cliCommands, func(c *cliCommand) bool { return c.group == group && c.name == verb })
	if i < 0 {
		return usagef("unknown command 'gust %s %s' (run 'gust %s --help')", group, verb, group)
	}
	cmd := cliCommands[i]
	a, err := parseCLIArgs(slices.Concat(cmd.flags, cliGlobalFlags), rest)
	if err != nil {
		return usagef("%v (run 'gust %s %s --help')", err, group, verb)
	}
	if a.bool("help") {
		printCommandHelp(stdout, cmd)
		return nil
	}
	if len(a.pos) < cmd.minArgs || len(a.pos) > cmd.maxArgs {
		return usagef("usage: gust %s %s %s[flags] (run 'gust %s %s --help')", group, verb, argsSynopsis(cmd), group, verb)
	}
	return cmd.run(ctx, &cliCtx{stdout: stdout, stderr: stderr, args: a})
}

// splitCommand finds the group and command words, skipping global flags
// before them (with the value of those that take one), and returns the
// other arguments in order.
func splitCommand(args []string) (group, verb string, rest []string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return group, verb, append(rest, args[i:]...)
		case strings.HasPrefix(arg, "-") && arg != "-":
			rest = append(rest, arg)
			if globalTakesValue(arg) && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
		case group == "":
			group = arg
		case verb == "":
			verb = arg
		default:
			rest = append(rest, arg)
		}
	}
	return group, verb, rest
}

// globalTakesValue reports whether arg is a global flag whose value is the
// next argument ("--apihost H", "-u KEY"; not "--apihost=H").
func globalTakesValue(arg string) bool {
	var def *cliFlag
	switch {
	case strings.HasPrefix(arg, "--") && !strings.Contains(arg, "="):
		def = lookupFlag(cliGlobalFlags, arg[2:], false)
	case len(arg) == 2:
		def = lookupFlag(cliGlobalFlags, arg[1:], true)
	}
	return def != nil && def.kind != flagBool
}

func (c *cliCtx) jsonOut() bool { return c.args.bool("json") }

// client returns an API client for the settings in effect.
func (c *cliCtx) client() (*client.Client, error) {
	s, err := loadSettings(c.args)
	if err != nil {
		return nil, err
	}
	if s.Auth == "" {
		return nil, errors.New("no credentials: run 'gust property set --auth UUID:KEY', or use GUST_AUTH or --auth")
	}
	hc := http.DefaultClient
	if c.args.bool("insecure") {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with -i, as wsk
		hc = &http.Client{Transport: tr}
	}
	return client.New(client.Config{APIHost: s.APIHost, Auth: s.Auth, Namespace: s.Namespace, HTTPClient: hc, UserAgent: "gust-cli"})
}

func argsSynopsis(cmd *cliCommand) string {
	if cmd.args == "" {
		return ""
	}
	return cmd.args + " "
}

func printGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: gust %s COMMAND [flags]\n\nCommands:\n", group)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, c := range cliCommands {
		if c.group == group {
			fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'gust %s COMMAND --help' for its flags.\n", group)
}

func printCommandHelp(w io.Writer, cmd *cliCommand) {
	summary := strings.ToUpper(cmd.summary[:1]) + cmd.summary[1:] + "."
	fmt.Fprintf(w, "Usage: gust %s %s %s[flags]\n\n%s\n", cmd.group, cmd.name, argsSynopsis(cmd), summary)
	printFlags := func(title string, flags []cliFlag) {
		if len(flags) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		for _, f := range flags {
			short := "    "
			if f.short != "" {
				short = "-" + f.short + ", "
			}
			fmt.Fprintf(tw, "  %s--%s %s\t%s\n", short, f.long, f.arg, f.help)
		}
		tw.Flush()
	}
	printFlags("Flags", cmd.flags)
	var globals []cliFlag
	for _, g := range cliGlobalFlags {
		if lookupFlag(cmd.flags, g.long, false) == nil {
			globals = append(globals, g)
		}
	}
	printFlags("Global flags", globals)
}

// cliGroupUsage is the part of `gust help` about the API client.
func cliGroupUsage() string {
	var b strings.Builder
	for _, g := range cliGroups {
		fmt.Fprintf(&b, "  gust %-25s %s\n", g.name+" COMMAND", g.summary)
	}
	return b.String()
}
