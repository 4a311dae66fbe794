package process

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gust-faas/gust/internal/sandbox"
)

// Exec kinds this backend runs.
const (
	KindPython = "python:3"
	KindNode   = "nodejs:20"
	KindGo     = "go"
	KindNative = "native"
)

// fdCtrl is the descriptor of a zygote-capable launcher's control socket.
const fdCtrl = 5

// Where the sandbox sees things.
const (
	appDir      = "/app"  // the action's code, read-only
	launcherDir = "/gust" // Gust's launchers, read-only
)

// runtimeKind is how one kind runs.
type runtimeKind struct {
	name        string
	interpreter string // host path; "" for executables
	launcher    string // file in launcherDir; "" for executables
	// markers: the worker ends each activation's output with marker lines
	// and replies with an R/E prefix (Gust's launchers). Executables speak
	// plain actionloop: no markers, the reply is the result.
	markers bool
	// stem: workers can be started before their code is known.
	stem bool
	// zygote: the launcher can become its function's fork server
	// (zygote_linux.go).
	zygote bool
	// concurrent: the launcher can run several activations at once
	// (mux_linux.go).
	concurrent bool
	// hideProtocol: the init helper moves the protocol pipes away from fds
	// 0 and 3 before the exec and appends their numbers to argv
	// (initSpec.HideProtocol), for a launcher that cannot do it itself.
	hideProtocol bool
}

// argv is the payload's command line. ctrl says the launcher has a control
// socket at fd 5, so that it can become a zygote.
func (rt *runtimeKind) argv(ctrl bool) []string {
	switch {
	case rt.launcher == "":
		return []string{appDir + "/exec"}
	case rt.name == KindPython:
		// -I: ignore PYTHON* variables and the user site; -B: the root is
		// read-only, do not try to write bytecode.
		argv := []string{rt.interpreter, "-I", "-B", launcherDir + "/" + rt.launcher}
		if ctrl {
			argv = append(argv, strconv.Itoa(fdCtrl))
		}
		return argv
	default:
		return []string{rt.interpreter, launcherDir + "/" + rt.launcher}
	}
}

// RuntimeInfo says whether a kind can run here and with what.
type RuntimeInfo = sandbox.RuntimeInfo

// newKinds builds the kind table from cfg; unavailable kinds get a reason.
func newKinds(cfg Config) ([]*runtimeKind, map[string]string) {
	kinds := []*runtimeKind{
		{name: KindPython, interpreter: cfg.Python, launcher: "launcher.py", markers: true, stem: true, zygote: !cfg.NoZygote},
		{name: KindNode, interpreter: cfg.Node, launcher: "launcher.js", markers: true, stem: true, hideProtocol: true, concurrent: true},
		{name: KindGo},
		{name: KindNative},
	}
	reasons := map[string]string{}
	for _, k := range kinds {
		if k.interpreter == "" {
			continue
		}
		if err := checkInterpreter(k.interpreter); err != nil {
			reasons[k.name] = err.Error()
		}
	}
	return kinds, reasons
}

func checkInterpreter(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("the interpreter path %q is not absolute", path)
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("the interpreter %s was not found", path)
	case !st.Mode().IsRegular() || st.Mode()&0o111 == 0:
		return fmt.Errorf("the interpreter %s is not an executable file", path)
	}
	return nil
}

// interpreterPrefix returns the install prefix of an interpreter that lives
// outside /usr (e.g. /opt/python3.12 for /opt/python3.12/bin/python3), which
// the sandbox must then mount; "" when /usr already has it.
func interpreterPrefix(path string) string {
	real, err := filepath.EvalSymlinks(path)
	if err != nil || strings.HasPrefix(real, "/usr/") {
		return ""
	}
	prefix := filepath.Dir(filepath.Dir(real))
	if prefix == "/" || prefix == "." {
		return filepath.Dir(real)
	}
	return prefix
}
