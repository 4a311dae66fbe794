package main

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

var testFlags = slices.Concat([]cliFlag{
	{long: "param", short: "p", kind: flagPair, arg: "KEY VALUE"},
	{long: "kind", kind: flagString, arg: "KIND"},
	{long: "limit", short: "l", kind: flagInt, arg: "N"},
	{long: "blocking", short: "b", kind: flagBool},
	{long: "result", short: "r", kind: flagBool},
}, cliGlobalFlags)

func TestParseCLIArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		pos  []string
		vals map[string][]string
	}{
		{"empty", nil, nil, map[string][]string{}},
		{"positionals only", []string{"hello", "a.wasm"}, []string{"hello", "a.wasm"}, map[string][]string{}},
		{
			"interleaved", []string{"hello", "-p", "a", "1", "hello.wasm", "--kind", "wasm", "-b"},
			[]string{"hello", "hello.wasm"},
			map[string][]string{"param": {"a", "1"}, "kind": {"wasm"}, "blocking": {"true"}},
		},
		{
			"repeated pairs keep order", []string{"-p", "a", "1", "--param", "b", "two words", "-p", "a", "3"},
			nil, map[string][]string{"param": {"a", "1", "b", "two words", "a", "3"}},
		},
		{"inline value", []string{"--kind=python:3", "--limit=5"}, nil, map[string][]string{"kind": {"python:3"}, "limit": {"5"}}},
		{"inline bool", []string{"--blocking=false"}, nil, map[string][]string{"blocking": {"false"}}},
		{"combined short bools", []string{"-br", "x"}, []string{"x"}, map[string][]string{"blocking": {"true"}, "result": {"true"}}},
		{"combined with a pair last", []string{"-bp", "k", "v"}, nil, map[string][]string{"blocking": {"true"}, "param": {"k", "v"}}},
		{"value that looks like a flag", []string{"-p", "k", "-1", "-l", "-5"}, nil, map[string][]string{"param": {"k", "-1"}, "limit": {"-5"}}},
		{"double dash ends flags", []string{"x", "--", "-b", "--kind"}, []string{"x", "-b", "--kind"}, map[string][]string{}},
		{"single dash is positional", []string{"-"}, []string{"-"}, map[string][]string{}},
		{"globals anywhere", []string{"list", "--json", "-i", "--apihost", "h:1", "-u", "a:b"}, []string{"list"},
			map[string][]string{"json": {"true"}, "insecure": {"true"}, "apihost": {"h:1"}, "auth": {"a:b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCLIArgs(testFlags, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.pos, tc.pos) || !reflect.DeepEqual(got.vals, tc.vals) {
				t.Errorf("parse(%q) = pos %q vals %q, want pos %q vals %q", tc.args, got.pos, got.vals, tc.pos, tc.vals)
			}
		})
	}
}

func TestParseCLIArgsShadowing(t *testing.T) {
	// A command's own flag wins over a global one of the same name: here
	// --auth is a bool (as in property get), so it must not swallow "x".
	defs := slices.Concat([]cliFlag{{long: "auth", short: "u", kind: flagBool}}, cliGlobalFlags)
	got, err := parseCLIArgs(defs, []string{"--auth", "x", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.pos, []string{"x"}) || !got.bool("auth") || !got.bool("json") {
		t.Errorf("pos %q vals %q", got.pos, got.vals)
	}
}

func TestParseCLIArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "unknown flag --nope"},
		{[]string{"-z"}, "unknown flag -z"},
		{[]string{"-bz"}, "unknown flag -z"},
		{[]string{"-p", "only-key"}, "flag -p needs KEY VALUE"},
		{[]string{"--kind"}, "flag --kind needs KIND"},
		{[]string{"--limit", "ten"}, `invalid value "ten" for --limit: want an integer`},
		{[]string{"--limit=1.5"}, `invalid value "1.5" for --limit: want an integer`},
		{[]string{"--blocking=maybe"}, `invalid value "maybe" for --blocking: want true or false`},
		{[]string{"--param=a"}, "flag --param takes two values: --param KEY VALUE"},
		{[]string{"-pb", "k", "v"}, "flag -p takes a value and must come last in -pb"},
	} {
		_, err := parseCLIArgs(testFlags, tc.args)
		var ue *cliUsageError
		if !errors.As(err, &ue) || err.Error() != tc.want {
			t.Errorf("parse(%q) error = %v, want usage error %q", tc.args, err, tc.want)
			continue
		}
		if ue.ExitCode() != 2 {
			t.Errorf("exit code = %d, want 2", ue.ExitCode())
		}
	}
}

func TestCLIArgsAccessors(t *testing.T) {
	a, err := parseCLIArgs(testFlags, []string{"-l", "7", "-p", "a", "1", "-p", "b", "2", "--kind", "x", "--kind", "y"})
	if err != nil {
		t.Fatal(err)
	}
	if a.int("limit", 30) != 7 || a.int("missing", 30) != 30 {
		t.Errorf("int: %d %d", a.int("limit", 30), a.int("missing", 30))
	}
	if a.str("kind") != "y" {
		t.Errorf("str(kind) = %q, want the last value", a.str("kind"))
	}
	if got := a.pairs("param"); !reflect.DeepEqual(got, [][2]string{{"a", "1"}, {"b", "2"}}) {
		t.Errorf("pairs = %q", got)
	}
	if a.bool("blocking") || a.has("blocking") {
		t.Error("absent bool reads as set")
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		group, verb string
		rest        []string
	}{
		{[]string{"action", "list"}, "action", "list", nil},
		{[]string{"--apihost", "h", "-u", "k", "action", "invoke", "x", "-b"}, "action", "invoke", []string{"--apihost", "h", "-u", "k", "x", "-b"}},
		{[]string{"--json", "activation", "--apihost=h", "get", "id"}, "activation", "get", []string{"--json", "--apihost=h", "id"}},
		{[]string{"action"}, "action", "", nil},
		{[]string{"action", "--help"}, "action", "", []string{"--help"}},
	} {
		g, v, rest := splitCommand(tc.args)
		if g != tc.group || v != tc.verb || !slices.Equal(rest, tc.rest) {
			t.Errorf("splitCommand(%q) = %q %q %q, want %q %q %q", tc.args, g, v, rest, tc.group, tc.verb, tc.rest)
		}
	}
}
