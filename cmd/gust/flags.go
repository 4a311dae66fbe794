package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The CLI parses its own flags: OpenWhisk's `-p KEY VALUE` takes two
// values, which neither the flag package nor cobra parse, and wsk lets flags
// and positional arguments interleave (`gust action invoke hello -p a 1 -b`).

// cliFlagKind says what a flag consumes after its name.
type cliFlagKind int

const (
	flagBool   cliFlagKind = iota // nothing; --name=false turns it off
	flagString                    // one value
	flagInt                       // one integer value
	flagPair                      // two values: KEY VALUE
)

// cliFlag describes one flag of a command.
type cliFlag struct {
	long  string // name without dashes: "param"
	short string // one letter or ""
	kind  cliFlagKind
	arg   string // value placeholder in help: "KEY VALUE", "MS"
	help  string
}

// cliArgs is a parsed command line: positional arguments and flag values.
type cliArgs struct {
	pos  []string
	vals map[string][]string // by long name, in order given; a pair adds KEY then VALUE
}

// cliUsageError is a mistake in the command line. It exits with 2, as the
// flag package does, so scripts can tell it from a failed operation.
type cliUsageError struct{ msg string }

func (e *cliUsageError) Error() string { return e.msg }
func (e *cliUsageError) ExitCode() int { return 2 }

func usagef(format string, args ...any) error {
	return &cliUsageError{fmt.Sprintf(format, args...)}
}

// parseCLIArgs parses args against defs. "--" ends the flags; "-" alone is
// a positional argument.
func parseCLIArgs(defs []cliFlag, args []string) (*cliArgs, error) {
	p := &cliArgs{vals: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			p.pos = append(p.pos, args[i+1:]...)
			return p, nil
		case arg == "-" || !strings.HasPrefix(arg, "-"):
			p.pos = append(p.pos, arg)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			def := lookupFlag(defs, name, false)
			if def == nil {
				return nil, usagef("unknown flag --%s", name)
			}
			if hasValue {
				if err := p.setInline(def, value); err != nil {
					return nil, err
				}
				continue
			}
			n, err := p.take(def, "--"+name, args[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
		default:
			// One or more short flags: "-b", "-br", "-p KEY VALUE", "-rp KEY VALUE".
			// Only the last letter may take values.
			letters := arg[1:]
			for j, r := range letters {
				def := lookupFlag(defs, string(r), true)
				if def == nil {
					return nil, usagef("unknown flag -%c", r)
				}
				if def.kind != flagBool && j != len(letters)-1 {
					return nil, usagef("flag -%c takes a value and must come last in %s", r, arg)
				}
				n, err := p.take(def, "-"+string(r), args[i+1:])
				if err != nil {
					return nil, err
				}
				i += n
			}
		}
	}
	return p, nil
}

// lookupFlag finds a flag by long or short name; the first match wins, so a
// command's own flags shadow global ones of the same name.
func lookupFlag(defs []cliFlag, name string, short bool) *cliFlag {
	for i := range defs {
		if !short && defs[i].long == name || short && defs[i].short != "" && defs[i].short == name {
			return &defs[i]
		}
	}
	return nil
}

// take records def's value(s) from rest and returns how many it consumed.
func (p *cliArgs) take(def *cliFlag, spelled string, rest []string) (int, error) {
	need := map[cliFlagKind]int{flagBool: 0, flagString: 1, flagInt: 1, flagPair: 2}[def.kind]
	if len(rest) < need {
		return 0, usagef("flag %s needs %s", spelled, def.arg)
	}
	if def.kind == flagBool {
		p.vals[def.long] = append(p.vals[def.long], "true")
		return 0, nil
	}
	if def.kind == flagInt {
		if _, err := strconv.Atoi(rest[0]); err != nil {
			return 0, usagef("invalid value %q for %s: want an integer", rest[0], spelled)
		}
	}
	p.vals[def.long] = append(p.vals[def.long], rest[:need]...)
	return need, nil
}

// setInline handles --name=value.
func (p *cliArgs) setInline(def *cliFlag, value string) error {
	switch def.kind {
	case flagBool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return usagef("invalid value %q for --%s: want true or false", value, def.long)
		}
		p.vals[def.long] = append(p.vals[def.long], strconv.FormatBool(b))
	case flagPair:
		return usagef("flag --%s takes two values: --%s %s", def.long, def.long, def.arg)
	default:
		_, err := p.take(def, "--"+def.long, []string{value})
		return err
	}
	return nil
}

// has reports whether the flag was given.
func (p *cliArgs) has(name string) bool { return len(p.vals[name]) > 0 }

// str returns the last value of a flag, or "".
func (p *cliArgs) str(name string) string {
	v := p.vals[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// strs returns every value of a repeatable flag.
func (p *cliArgs) strs(name string) []string { return p.vals[name] }

// bool returns the last setting of a boolean flag.
func (p *cliArgs) bool(name string) bool { return p.str(name) == "true" }

// int returns an integer flag (validated by the parser), or def when absent.
func (p *cliArgs) int(name string, def int) int {
	if !p.has(name) {
		return def
	}
	n, _ := strconv.Atoi(p.str(name))
	return n
}

// pairs returns the KEY VALUE pairs of a pair flag, in order given.
func (p *cliArgs) pairs(name string) [][2]string {
	v := p.vals[name]
	out := make([][2]string, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, [2]string{v[i], v[i+1]})
	}
	return out
}
