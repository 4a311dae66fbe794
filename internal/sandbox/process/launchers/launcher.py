# Gust Python launcher: runs inside the process sandbox and serves many
# activations of one action, one at a time (docs/process.md).
#
# Protocol, one JSON document per line:
#   fd 3, at start-up: R{"ready":true} (the interpreter is up)
#   stdin, first line: {"init": {"main", "dir", "entry", "env"}}; reply on fd 3.
#   stdin, then:       {"value": {...}, "activation_id": ..., "deadline": ..., ...}
#   fd 3 reply:        R<json result>  or  E<json string: developer error>
# After each init and each run, the line XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX
# is written to stdout and stderr, then the reply: the host attributes
# the log lines before the markers to that activation.
#
# Standard library only; it must start fast, so it imports little.
import json
import os
import sys
import traceback
import types

MARK = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"


def reply(fd, kind, payload):
    # Flush the function's buffered output first, so that every line it
    # printed lands before the markers.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.write(1, MARK)
    os.write(2, MARK)
    data = kind + payload.encode("utf-8", "replace") + b"\n"
    while data:
        data = data[os.write(fd, data):]


def load(init):
    # The action's code is a module named main__ (as OpenWhisk names it), so
    # an `if __name__ == "__main__"` block in it does not run.
    d = init.get("dir") or "/app"
    path = os.path.join(d, init.get("entry") or "__main__.py")
    sys.path.insert(0, d)
    venv = os.path.join(d, "virtualenv", "lib")
    if os.path.isdir(venv):
        for name in sorted(os.listdir(venv)):
            site = os.path.join(venv, name, "site-packages")
            if os.path.isdir(site):
                sys.path.insert(1, site)
    with open(path, "rb") as f:
        source = f.read()
    module = types.ModuleType("main__")
    module.__file__ = path
    sys.modules["main__"] = module
    exec(compile(source, path, "exec"), module.__dict__)
    name = init.get("main") or "main"
    fn = getattr(module, name, None)
    if not callable(fn):
        raise LookupError("the action has no function %r" % name)
    return fn


def main():
    # Keep the protocol streams to ourselves: the function gets /dev/null as
    # stdin and cannot read or forge protocol lines by accident.
    proto_in = os.fdopen(os.dup(0), "rb")
    result_fd = os.dup(3)
    os.close(3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout.reconfigure(line_buffering=True)
    os.write(result_fd, b'R{"ready":true}\n')

    line = proto_in.readline()
    if not line:
        return
    init = json.loads(line).get("init") or {}
    os.environ.update({k: str(v) for k, v in (init.get("env") or {}).items()})
    try:
        fn = load(init)
    except Exception as e:
        traceback.print_exc()
        reply(result_fd, b"E", json.dumps(
            "The action failed during initialization: %s" % "".join(traceback.format_exception_only(type(e), e)).strip(),
            ensure_ascii=False))
        return
    reply(result_fd, b"R", '{"ok":true}')

    for line in proto_in:
        msg = json.loads(line)
        for k, v in msg.items():
            if k != "value" and isinstance(v, str):
                os.environ["__OW_" + k.upper()] = v
        try:
            out = json.dumps(fn(msg.get("value", {})), ensure_ascii=False, separators=(",", ":"))
        except Exception as e:
            # OpenWhisk's Python runtime: an exception is an application
            # error carrying its message; the traceback goes to the log.
            traceback.print_exc()
            out = json.dumps({"error": str(e)}, ensure_ascii=False)
        reply(result_fd, b"R", out)


main()
