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


def error_text(e):
    # The text of an application error. Some exceptions have none
    # (MemoryError(), a bare `raise KeyError`): name them instead, so the
    # error says what happened.
    text = str(e)
    if isinstance(e, MemoryError):
        return "MemoryError: the action ran out of memory" + (" (%s)" % text if text else "")
    return text or type(e).__name__


def serve(fn, proto_in, result_fd):
    for line in proto_in:
        msg = json.loads(line)
        for k, v in msg.items():
            if k != "value" and isinstance(v, str):
                os.environ["__OW_" + k.upper()] = v
        try:
            ret = fn(msg.get("value", {}))
            try:
                # allow_nan=False: NaN and Infinity are not JSON.
                out = json.dumps(ret, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError, RecursionError) as e:
                # Not a JSON value (a set, an object, a cycle): the
                # developer's error, as returning None is (docs/process.md).
                reply(result_fd, b"E", json.dumps(
                    "The action did not return a dictionary or array. Its result is not JSON: %s" % error_text(e),
                    ensure_ascii=False))
                continue
        except Exception as e:
            # OpenWhisk's Python runtime: an exception is an application
            # error carrying its message; the traceback goes to the log.
            try:
                traceback.print_exc()
            except Exception:
                pass
            out = json.dumps({"error": error_text(e)}, ensure_ascii=False)
        reply(result_fd, b"R", out)


def forkable():
    # A fork copies only the calling thread: code that started threads as
    # it loaded (their locks may be held) must not be forked.
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return "threading" not in sys.modules or sys.modules["threading"].active_count() == 1


def zygote(fn, ctrl_fd, proto_in, result_fd):
    # The fork server of one action (docs/process.md, zygote_linux.go): on
    # each "F" from the invoker, with five descriptors (a status socket and
    # the new worker's stdin, stdout, stderr and result pipe), fork a worker
    # that serves calls with the already loaded code. Report each worker's
    # exit status ("X<status>") on its status socket once reaped. PID 1 of
    # the sandbox: every orphan comes here to be reaped.
    # The C modules, not their Python wrappers: they are what is needed and
    # load in a tenth of the time (this is on a cold first call's path).
    import _signal as signal
    import _socket as socket
    import array
    import gc
    import select

    ctrl = socket.socket(fileno=ctrl_fd)
    # Workers share the zygote's pid namespace and uid: Python's default
    # SIGINT handler would let one end it (and its siblings) with a signal.
    # As PID 1 of the namespace, it gets no other signal it does not handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The zygote's own output would go to pipes nobody reads any more (a
    # full pipe would block it): it has nothing to say after its init.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    kids = {}  # pid -> status socket fd

    # Objects made so far are shared with every child: keep the collector
    # from touching (and so copying) their pages. No collection first: it
    # would cost a first fork tens of milliseconds after heavy imports, and
    # what garbage the imports left stays in the zygote only.
    gc.freeze()

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = kids.pop(pid, None)
            if fd is not None:
                try:
                    os.write(fd, b"X%d" % status)
                except OSError:
                    pass
                os.close(fd)

    def child(fds):
        status_fd, fin, fout, ferr, fres = fds
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.dup2(fout, 1)
            os.dup2(ferr, 2)
            for fd in [fout, ferr, wake_r, wake_w, result_fd] + list(kids.values()):
                os.close(fd)
            ctrl.close()
            proto_in.close()
            # Hello, then wait until the invoker has moved us into our own
            # cgroup: no code of the action runs before.
            os.write(status_fd, b"H")
            if os.read(status_fd, 1) != b"G":
                os._exit(1)
            os.close(status_fd)
            serve(fn, os.fdopen(fin, "rb"), fres)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)

    while True:
        try:
            ready, _, _ = select.select([ctrl, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        reap()
        if ctrl not in ready:
            continue
        fds = array.array("i")
        try:
            msg, anc, _, _ = ctrl.recvmsg(16, socket.CMSG_SPACE(8 * fds.itemsize))
        except OSError:
            return
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        fds = list(fds)
        if not msg:
            return  # the invoker closed the zygote
        if msg != b"F" or len(fds) != 5:
            for fd in fds:
                os.close(fd)
            continue
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            pid = os.fork()
        except OSError as e:
            try:
                os.write(fds[0], b"E" + str(e).encode("utf-8", "replace"))
            except OSError:
                pass
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            child(fds)  # never returns
        for fd in fds[1:]:
            os.close(fd)
        kids[pid] = fds[0]


def main():
    # fd 5 is a control socket when the invoker may make this launcher a
    # zygote (argv[1] names it).
    ctrl_fd = int(sys.argv[1]) if len(sys.argv) > 1 else -1
    if ctrl_fd >= 0:
        # What a zygote needs, loaded before "ready": a stem cell does it
        # ahead of any call.
        import _signal, _socket, array, gc, select  # noqa: F401
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
    if ctrl_fd >= 0 and init.get("zygote") and forkable():
        reply(result_fd, b"R", '{"ok":true,"zygote":true}')
        zygote(fn, ctrl_fd, proto_in, result_fd)
        return
    if ctrl_fd >= 0:
        os.close(ctrl_fd)
    reply(result_fd, b"R", '{"ok":true}')
    serve(fn, proto_in, result_fd)


main()
