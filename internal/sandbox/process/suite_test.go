//go:build linux

package process

import (
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// pyChatty and nodeChatty are the Chatty fixture: {"bytes": N} logs N
// bytes, in lines of 100, written a megabyte at a time.
const (
	pyChatty = `import sys
count = 0
def main(args):
    global count
    count += 1
    left = args.get("bytes", 0)
    line = "x" * 99 + "\n"
    block = line * 10000
    while left >= len(block):
        sys.stdout.write(block)
        left -= len(block)
    if left > 0:
        sys.stdout.write("x" * (left - 1) + "\n")
    return {"count": count}
`
	nodeChatty = `let count = 0;
function main(params) {
  count++;
  let left = params.bytes || 0;
  const line = 'x'.repeat(99) + '\n';
  const block = line.repeat(10000);
  while (left >= block.length) {
    process.stdout.write(block);
    left -= block.length;
  }
  if (left > 0) process.stdout.write('x'.repeat(left - 1) + '\n');
  return { count };
}`
)

// pyEscape and nodeEscape are the Escape fixture (sandboxtest.Fixtures).
const (
	pyEscape = `import errno, os, socket

def why(e):
    if isinstance(e, OSError) and e.errno in errno.errorcode:
        return errno.errorcode[e.errno]
    return "%s: %s" % (type(e).__name__, e)

def read(p):
    with open(p, "rb") as f:
        f.read(100)

def write(p, data):
    with open(p, "w") as f:
        f.write(data)

def procs():
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip())
            except OSError:
                out.append("")
    return out

def fill(d, mb):
    os.makedirs(d, exist_ok=True)
    block = b"x" * (1 << 20)
    for i in range(mb):
        try:
            with open(os.path.join(d, "f%d" % i), "wb") as f:
                f.write(block)
        except OSError as e:
            return {"outcome": why(e), "mb": i}
    return {"outcome": "ok", "mb": mb}

def main(args):
    op = args["op"]
    if op == "fill":
        return fill(args["dir"], args["mb"])
    r = {}
    try:
        if op == "read":
            read(args["path"])
        elif op == "write":
            write(args["path"], args.get("data", "x"))
        elif op == "list":
            r["names"] = os.listdir(args["path"])
        elif op == "procs":
            r["cmdlines"] = procs()
        elif op == "connect":
            socket.create_connection((args["host"], args["port"]), timeout=2).close()
        elif op == "resolve":
            socket.getaddrinfo(args["host"], 80)
        else:
            return {"outcome": "unknown op " + op}
        r["outcome"] = "ok"
    except Exception as e:
        r["outcome"] = why(e)
    return r
`
	nodeEscape = `const fs = require('fs');
const net = require('net');
const dns = require('dns');
const path = require('path');

const why = (e) => (e && e.code) || String(e);

function connect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(2000, () => { s.destroy(); resolve('ETIMEDOUT'); });
    s.on('connect', () => { s.destroy(); resolve('ok'); });
    s.on('error', (e) => resolve(why(e)));
  });
}

function procs() {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
    try {
      return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').split('\0').join(' ').trim();
    } catch (e) {
      return '';
    }
  });
}

function fill(dir, mb) {
  fs.mkdirSync(dir, { recursive: true });
  const block = Buffer.alloc(1 << 20, 120);
  for (let i = 0; i < mb; i++) {
    try {
      fs.writeFileSync(path.join(dir, 'f' + i), block);
    } catch (e) {
      return { outcome: why(e), mb: i };
    }
  }
  return { outcome: 'ok', mb };
}

async function main(args) {
  try {
    switch (args.op) {
      case 'read': fs.readFileSync(args.path); return { outcome: 'ok' };
      case 'write': fs.writeFileSync(args.path, args.data || 'x'); return { outcome: 'ok' };
      case 'list': return { outcome: 'ok', names: fs.readdirSync(args.path) };
      case 'procs': return { outcome: 'ok', cmdlines: procs() };
      case 'connect': return { outcome: await connect(args.host, args.port) };
      case 'resolve': return { outcome: await new Promise((r) => dns.lookup(args.host, (e) => r(e ? why(e) : 'ok'))) };
      case 'fill': return fill(args.dir, args.mb);
    }
    return { outcome: 'unknown op ' + args.op };
  } catch (e) {
    return { outcome: why(e) };
  }
}`
)

// suiteTmpMB is the /tmp of the conformance suites' backends: small, so
// that the quota scenario fills it fast.
const suiteTmpMB = 16

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
		Chatty:    []byte(pyChatty),
		Escape:    []byte(pyEscape),
		TmpMB:     suiteTmpMB,
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
		Chatty:    []byte(nodeChatty),
		Escape:    []byte(nodeEscape),
		TmpMB:     suiteTmpMB,
		WarmReuse: true,
	}
)

// prewarmed is Fixtures.Prewarmed for a backend with stem cells.
func prewarmed(b *Backend, kind string) func(testing.TB) {
	return func(t testing.TB) { waitCells(t, b, kind, 1) }
}

func TestConformance(t *testing.T) {
	t.Run("Python", func(t *testing.T) {
		sandboxtest.Run(t, newBackend(t, Config{TmpMB: suiteTmpMB}), pyFixtures)
	})
	t.Run("PythonNoZygote", func(t *testing.T) {
		// Every worker a plain sandbox, as for code that starts threads
		// at load.
		fx := pyFixtures
		fx.BigResult, fx.Invalid, fx.Chatty = nil, nil, nil // covered above
		sandboxtest.Run(t, newBackend(t, Config{NoZygote: true, TmpMB: suiteTmpMB}), fx)
	})
	t.Run("PythonStemCells", func(t *testing.T) {
		b := newBackend(t, Config{StemCells: 2, TmpMB: suiteTmpMB})
		fx := pyFixtures
		fx.Logs, fx.BigResult, fx.Invalid, fx.Chatty, fx.Escape = nil, nil, nil, nil, nil // covered above
		fx.Prewarmed = prewarmed(b, KindPython)
		sandboxtest.Run(t, b, fx)
	})
	t.Run("Node", func(t *testing.T) {
		sandboxtest.Run(t, newBackend(t, Config{TmpMB: suiteTmpMB}), nodeFixtures)
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
