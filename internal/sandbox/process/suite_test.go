//go:build linux

package process

import (
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// Conformance fixtures, one set per kind.
var (
	pyFixtures = sandboxtest.Fixtures{
		Kind:  KindPython,
		Hello: []byte(pyHello),
		Logs: []byte(`import sys
def main(args):
    for i in range(1000):
        print("log line %d" % i, file=sys.stderr)
    return {}
`),
		AppError: []byte("def main(args):\n    return {\"error\": \"boom\"}\n"),
		Loop:     []byte("def main(args):\n    while True:\n        pass\n"),
		MemoryBomb: []byte(`def main(args):
    chunks = []
    while True:
        chunks.append(bytearray(16 << 20))
`),
		BigResult: []byte("def main(args):\n    return {\"data\": \"x\" * 100000}\n"),
		Env:       []byte("import os\ndef main(args):\n    return {\"activation_id\": os.environ[\"__OW_ACTIVATION_ID\"]}\n"),
		Invalid:   []byte("PK\x03\x04 this is not really a zip archive"),
		Counter: []byte(`import os
count = 0
def main(args):
    global count
    count += 1
    if args.get("crash"):
        os._exit(3)
    if args.get("loop"):
        while True:
            pass
    return {"count": count}
`),
		WarmReuse: true,
	}
	nodeFixtures = sandboxtest.Fixtures{
		Kind: KindNode,
		Hello: []byte(`function main(params) {
  return { greeting: "Hello, " + (params.name || "stranger") + "!" };
}`),
		Logs: []byte(`function main() {
  for (let i = 0; i < 1000; i++) console.error("log line " + i);
  return {};
}`),
		AppError: []byte(`function main() { return { error: "boom" }; }`),
		Loop:     []byte(`function main() { for (;;) {} }`),
		MemoryBomb: []byte(`function main() {
  const chunks = [];
  for (;;) chunks.push(Buffer.alloc(16 << 20, 1));
}`),
		BigResult: []byte(`function main() { return { data: "x".repeat(100000) }; }`),
		Env:       []byte(`function main() { return { activation_id: process.env.__OW_ACTIVATION_ID }; }`),
		Invalid:   []byte("PK\x03\x04 this is not really a zip archive"),
		Counter: []byte(`let count = 0;
function main(params) {
  count++;
  if (params.crash) process.exit(3);
  if (params.loop) for (;;) {}
  return { count };
}`),
		WarmReuse: true,
	}
)

// prewarmed is Fixtures.Prewarmed for a backend with stem cells.
func prewarmed(b *Backend, kind string) func(testing.TB) {
	return func(t testing.TB) { waitCells(t, b, kind, 1) }
}

func TestConformance(t *testing.T) {
	t.Run("Python", func(t *testing.T) {
		sandboxtest.Run(t, newBackend(t, Config{}), pyFixtures)
	})
	t.Run("PythonNoZygote", func(t *testing.T) {
		// Every worker a plain sandbox, as for code that starts threads
		// at load.
		fx := pyFixtures
		fx.BigResult, fx.Invalid = nil, nil // covered above
		sandboxtest.Run(t, newBackend(t, Config{NoZygote: true}), fx)
	})
	t.Run("PythonStemCells", func(t *testing.T) {
		b := newBackend(t, Config{StemCells: 2})
		fx := pyFixtures
		fx.Logs, fx.BigResult, fx.Invalid = nil, nil, nil // covered above
		fx.Prewarmed = prewarmed(b, KindPython)
		sandboxtest.Run(t, b, fx)
	})
	t.Run("Node", func(t *testing.T) {
		sandboxtest.Run(t, newBackend(t, Config{}), nodeFixtures)
	})
	t.Run("NodeStemCells", func(t *testing.T) {
		b := newBackend(t, Config{StemCells: 1})
		sandboxtest.Run(t, b, sandboxtest.Fixtures{
			Kind: KindNode, Hello: nodeFixtures.Hello, Counter: nodeFixtures.Counter,
			WarmReuse: true, Prewarmed: prewarmed(b, KindNode),
		})
	})
	t.Run("Native", func(t *testing.T) {
		exe := buildNative(t, "hello")
		sandboxtest.Run(t, newBackend(t, Config{}), sandboxtest.Fixtures{
			Kind:       KindNative,
			Hello:      exe,
			Env:        exe,
			Logs:       buildNative(t, "logs"),
			AppError:   buildNative(t, "error"),
			Loop:       buildNative(t, "loop"),
			MemoryBomb: buildNative(t, "membomb"),
			BigResult:  buildNative(t, "bigresult"),
			Invalid:    []byte("package main\n\nfunc main() {}\n"),
			Counter:    buildNative(t, "counter"),
			WarmReuse:  true,
		})
	})
}
