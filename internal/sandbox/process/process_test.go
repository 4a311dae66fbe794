//go:build linux

package process

import (
	"testing"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

const pyHello = `
def main(args):
    name = args.get("name", "stranger")
    print("hello from python")
    return {"greeting": "Hello, " + name + "!"}
`

func TestPythonHello(t *testing.T) {
	b := newBackend(t, Config{})
	f := prepare(t, b, KindPython, pyHello, sandboxtest.Limits())
	res := call(t, f, `{"name":"Gust"}`)
	wantStatus(t, res, gust.StatusSuccess)
	if got := resultMap(t, res)["greeting"]; got != "Hello, Gust!" {
		t.Errorf("greeting = %v", got)
	}
	t.Logf("start %s init %v logs %q", res.Start, res.InitTime, res.Logs)
}
