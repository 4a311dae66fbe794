package process

import (
	"log/slog"
	"time"
)

// Defaults applied to zero fields of Config and sandbox.Limits.
const (
	DefaultPython           = "/usr/bin/python3"
	DefaultNode             = "/usr/bin/node"
	DefaultStemCells        = 1
	DefaultMaxWorkers       = 8
	DefaultIdleTimeout      = 10 * time.Minute
	DefaultTmpMB            = 64
	DefaultPids             = 128
	DefaultHostUID          = 100000
	DefaultStemCellMemoryMB = 256
	DefaultMaxCodeBytes     = 256 << 20 // bytes of extracted code, against zip bombs
	defaultMemoryMB         = 256
	defaultTimeout          = time.Minute
	defaultResultBytes      = 1 << 20
)

// Config configures a Backend. The zero value works.
type Config struct {
	// WorkDir holds code and stem-cell directories. Empty means a new
	// temporary directory, removed by Close.
	WorkDir string
	// Python and Node are the interpreters' host paths. Defaults are the
	// distribution's, not whatever comes first on PATH (a pyenv shim costs
	// tens of milliseconds per start). An interpreter outside /usr gets its
	// install prefix mounted read-only in its kind's sandboxes. New probes
	// each (probe_linux.go): one that is too old or cannot run the launcher
	// in the sandbox leaves its kind unavailable, saying why.
	Python, Node string
	// StemCells is the number of prewarmed workers kept per launcher kind
	// (Python, Node). 0 means DefaultStemCells; negative disables them.
	StemCells int
	// NoZygote turns Python zygotes off. By default a Python function whose
	// pool grows (a new worker is needed while other calls hold workers)
	// gets a zygote: a sandbox that loads the function's code once and then
	// forks its new workers (about a millisecond each, the imports already
	// done), each moved into a cgroup of its own. With NoZygote every
	// worker is a stem cell or a new sandbox that loads the code itself.
	NoZygote bool
	// StemCellMemoryMB bounds a stem cell until a function takes it and it
	// gets the function's limit. 0 means DefaultStemCellMemoryMB.
	StemCellMemoryMB int
	// MaxWorkersPerFunction caps the live workers of one function, which is
	// also its number of concurrent calls; more calls wait. 0 means
	// DefaultMaxWorkers.
	MaxWorkersPerFunction int
	// IdleTimeout ends workers unused for that long. 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// TmpMB is the size of each sandbox's private /tmp (charged to its
	// memory limit as it fills). 0 means DefaultTmpMB.
	TmpMB int
	// Pids caps the processes and threads of one sandbox. 0 means
	// DefaultPids.
	Pids int
	// CPUs caps the CPU time of one sandbox, in cores (0.5 = half a core).
	// 0 means no cap beyond a share proportional to its memory.
	CPUs float64
	// HostUID is the first host uid of the sandboxes' identities: the
	// init runs as HostUID, functions as HostUID+1000. Both should be unused
	// on the host. 0 means DefaultHostUID.
	HostUID int
	// CgroupParent is the cgroup (a path from each hierarchy's root) under
	// which sandboxes' cgroups are created. Empty means our own cgroup, or,
	// on cgroup v2 when that is impossible, the root.
	CgroupParent string
	// Env is added to every function's environment, e.g. __OW_API_HOST.
	// The host's own environment never reaches a function.
	Env map[string]string
	// Mounts, when set, returns extra bind mounts for each new sandbox (e.g.
	// a per-sandbox egress proxy socket); id names the sandbox.
	Mounts func(id string) []Mount
	// MaxCodeBytes bounds the extracted size of a zip action. 0 means
	// DefaultMaxCodeBytes.
	MaxCodeBytes int64
	// Logger receives debug events. Nil discards.
	Logger *slog.Logger
}

// Mount is an extra bind mount into a sandbox, e.g. the unix socket of an
// egress proxy (reference/sandbox.md C). Source is a host path, a file or
// a directory; Target is the path inside the sandbox.
type Mount struct {
	Source   string
	Target   string
	Writable bool
}
