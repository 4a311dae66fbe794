// Package process runs functions as Linux processes in Gust's own sandbox:
// Python ("python:3") and Node.js ("nodejs:20") through Gust's launchers,
// and executables that speak OpenWhisk's actionloop protocol ("go",
// "native"). It is a sandbox.Backend; docs/process.md describes the sandbox,
// the protocol and the limits for function authors and operators.
//
// A sandbox is a re-exec of this binary (MaybeRunInit) in new user, pid,
// mount, network, IPC, UTS and cgroup namespaces. It builds a minimal
// read-only root (a tmpfs with /usr and a few /etc files bound read-only,
// the code at /app, a private size-bounded /tmp, a fresh /proc), drops to an
// unprivileged uid, installs a seccomp filter with an architecture check,
// and execs the payload. Each sandbox has its own cgroups (memory with no
// swap, pids, CPU) on cgroup v1, v2 or a hybrid of both.
//
// A sandbox is a long-lived worker: one process serves many activations of
// one function, in turn, over one JSON line in (stdin) and one out (fd 3).
// Each function has a pool of workers (one per concurrent call, up to a
// cap); each launcher kind has a few prewarmed "stem cells", sandboxes whose
// interpreter is up and waiting for code, so that a cold call skips the
// process start. A Python function whose pool grows gets a zygote: a
// sandbox that has loaded its code and forks each new worker, which the
// invoker moves into a cgroup of its own (zygote_linux.go). A worker that
// crashes, times out or runs out of memory is killed and replaced by the
// next call.
//
// The package needs root (to map the sandbox's uids and write cgroups) and
// user namespaces; Runtimes says why a kind is unavailable.
package process
