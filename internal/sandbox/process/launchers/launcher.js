// Gust Node.js launcher: runs inside the process sandbox and serves many
// activations of one action, one at a time, or with "concurrency" several
// at once (below; docs/process.md).
//
// Protocol, one JSON document per line, on the request and reply pipes
// (below; the invoker's stdin and fd 3):
//   reply, at start-up: R{"ready":true} (the interpreter is up)
//   request, first:     {"init": {"main", "dir", "entry", "plain", "env"}}; one reply.
//   request, then:      {"value": {...}, "activation_id": ..., "deadline": ..., ...}
//   reply:              R<json result>  or  E<json string: developer error>
// After each init and each run, the line XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX
// is written to stdout and stderr, then the reply.
//
// The protocol pipes are not at fds 0 and 3: the sandbox's init helper
// moved them (Node.js cannot dup a descriptor) and names them as argv[2]
// (requests) and argv[3] (replies); fd 0 is /dev/null and fd 3 is closed.
// So the function cannot read the next request (process.stdin) or forge a
// reply by accident.
//
// With "concurrency": N > 1 in the init, up to N activations run at once
// (OpenWhisk's intra-container concurrency). Each request's activation is
// tracked with AsyncLocalStorage; every line the function writes to stdout
// or stderr, its end marker and its reply are prefixed with
// "<activation id>\t", so the invoker can tell them apart; output written
// outside any activation (a timer left over) carries no prefix.
//
// OpenWhisk's Node.js semantics: main may be a global function of plain
// source or an exported one; a returned Promise is awaited; a rejected
// Promise is an application error; a thrown exception is a developer error.
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const Module = require('module');
const readline = require('readline');
const { AsyncLocalStorage } = require('async_hooks');

const [requestFd, replyFd] = process.argv.slice(2, 4).map(Number);

const MARK = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n';

function writeAll(fd, s) {
  const b = Buffer.from(s);
  for (let off = 0; off < b.length;) {
    try {
      off += fs.writeSync(fd, b, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

function reply(kind, payload) {
  // Writes to pipes are synchronous on Linux, so everything the function
  // logged is already out; the markers follow it in order.
  process.stdout.write(MARK);
  process.stderr.write(MARK);
  writeAll(replyFd, kind + payload + '\n');
}

const identifier = /^[A-Za-z_$][\w$]*$/;

// loadPlain evaluates plain source as OpenWhisk does: non-strict, with
// CommonJS exports/module/require in scope, so that both a top-level
// `function main` and `exports.main = …` define the action.
function loadPlain(file, name) {
  const code = fs.readFileSync(file, 'utf8');
  const mod = { exports: {} };
  const req = Module.createRequire(file);
  const lookup = identifier.test(name)
    ? `\n;return typeof ${name} === 'function' ? ${name} : undefined;`
    : '\n;return undefined;';
  const body = new Function('exports', 'require', 'module', '__filename', '__dirname', code + lookup);
  const global = body(mod.exports, req, mod, file, path.dirname(file));
  if (typeof global === 'function') return global;
  return mod.exports && mod.exports[name];
}

function load(init) {
  const dir = init.dir || '/app';
  const name = init.main || 'main';
  let fn;
  if (init.plain) {
    fn = loadPlain(path.join(dir, init.entry || 'index.js'), name);
  } else {
    // A zip: package.json "main", else index.js, as require() resolves it.
    const exp = require(dir);
    fn = exp && exp[name];
    if (fn === undefined && name === 'main' && typeof exp === 'function') fn = exp;
  }
  if (typeof fn !== 'function') throw new Error(`the action has no function ${JSON.stringify(name)}`);
  return fn;
}

function errorText(e) {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : JSON.stringify(e);
}

async function run(fn, msg) {
  for (const [k, v] of Object.entries(msg)) {
    if (k !== 'value' && typeof v === 'string') process.env['__OW_' + k.toUpperCase()] = v;
  }
  let ret;
  try {
    ret = fn(msg.value === undefined ? {} : msg.value);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    return ['E', JSON.stringify('An error has occurred: ' + errorText(e))];
  }
  try {
    ret = await ret;
  } catch (e) {
    if (e && e.stack) console.error(e.stack);
    const err = e instanceof Error ? e.message : e;
    return ['R', JSON.stringify({ error: err === undefined ? 'rejected' : err })];
  }
  if (ret === undefined) ret = {};
  let out;
  try {
    out = JSON.stringify(ret);
  } catch (e) {
    return ['E', JSON.stringify('The action did not return a serializable result: ' + errorText(e))];
  }
  return ['R', out];
}

// Concurrent mode: prefix each line of the function's output with its
// activation's id (the first write of a line carries it). The stream is
// shared, so a line one activation left open (written without its
// newline) is ended before another writes: each line then belongs to one
// activation, and its end marker, which may follow its own open line, is
// found on a line that starts with its id.
const current = new AsyncLocalStorage();
const untagged = Symbol('untagged');

function tagStream(stream) {
  const write = stream.write.bind(stream);
  let open = null; // whose line is open: an activation id, untagged, or null (at a line start)
  stream.write = (chunk, encoding, cb) => {
    const id = current.getStore();
    const owner = id === undefined ? untagged : id;
    if (chunk.length === 0) return write(chunk, encoding, cb);
    let out = open !== null && open !== owner ? '\n' : '';
    if (id === undefined) {
      if (out) write(out);
      const last = typeof chunk === 'string' ? chunk.endsWith('\n') : chunk[chunk.length - 1] === 10;
      open = last ? null : untagged;
      return write(chunk, encoding, cb);
    }
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    let start = open !== id;
    for (const piece of text.split(/(?<=\n)/)) {
      out += (start ? id + '\t' : '') + piece;
      start = piece.endsWith('\n');
    }
    open = start ? null : id;
    return write(out, typeof encoding === 'function' ? encoding : cb);
  };
}

async function serveConcurrently(lines, fn) {
  tagStream(process.stdout);
  tagStream(process.stderr);
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    const line = next.value;
    const msg = JSON.parse(line);
    const id = msg.activation_id;
    current.run(id, async () => {
      const [kind, out] = await run(fn, msg);
      // Tagged by the storage: the markers end this activation's output.
      process.stdout.write(MARK);
      process.stderr.write(MARK);
      writeAll(replyFd, id + '\t' + kind + out + '\n');
    });
  }
}

async function main() {
  if (!Number.isInteger(requestFd) || !Number.isInteger(replyFd)) {
    throw new Error('usage: launcher.js <request fd> <reply fd>');
  }
  writeAll(replyFd, 'R{"ready":true}\n');
  // A pipe: net.Socket reads it through the event loop, as process.stdin
  // would.
  const input = new net.Socket({ fd: requestFd, readable: true, writable: false });
  const rl = readline.createInterface({ input, crlfDelay: Infinity, terminal: false });
  let fn;
  const lines = rl[Symbol.asyncIterator]();
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    const msg = JSON.parse(next.value);
    if (fn === undefined) {
      const init = msg.init || {};
      for (const [k, v] of Object.entries(init.env || {})) process.env[k] = String(v);
      try {
        fn = load(init);
      } catch (e) {
        console.error(e && e.stack ? e.stack : String(e));
        reply('E', JSON.stringify('Initialization has failed due to: ' + errorText(e)));
        return;
      }
      reply('R', '{"ok":true}');
      if (init.concurrency > 1) return serveConcurrently(lines, fn);
      continue;
    }
    const [kind, out] = await run(fn, msg);
    reply(kind, out);
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(70);
});
