// Package sandbox is the extension point for the backends that run function
// code (wasm/, and the process backend later). It defines what a backend must
// do; the invoker pools and calls them; sandboxtest holds the conformance
// suite every backend passes.
package sandbox

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// Spec is a function ready to be prepared by a backend.
type Spec struct {
	Kind   string // e.g. "wasm"
	Code   []byte // decoded code (a wasm module, a zip, a source file)
	Digest string // hex SHA-256 of Code; backends key their caches on it
	Main   string // entry point name, "main" by default
	Limits Limits
	// Owner is the namespace that owns the action, and Dirs the names of
	// host directories it asks for (annotation gust-dirs); a backend grants
	// only what its operator configured for that namespace.
	Owner string
	Dirs  []string
	// Env holds the action's init parameters (OpenWhisk's "init": true):
	// environment of the function's instances, set once when an instance
	// is initialised, not passed per call.
	Env map[string]string
	// Budget, when set, is where the function takes Limits.MemoryMB for
	// each instance it starts and gives it back when the instance ends.
	Budget Budget
}

// DirsAnnotation names the action annotation that asks for host
// directories: a JSON array of the names the operator granted.
const DirsAnnotation = "gust-dirs"

// Budget is the invoker's memory as a backend sees it. A backend takes the
// function's memory limit from it before it starts an instance (a fresh
// wasm instance, a reactor instance, a worker process, a zygote) and gives
// it back when the instance ends, so that the live instances of an
// invoker, busy or idle, never hold more memory than it has.
type Budget interface {
	// Acquire reserves memory for one new instance. It may close idle
	// instances of other functions to make room and waits while ctx
	// allows; an error means no instance may start.
	Acquire(ctx context.Context) error
	// TryAcquire reserves memory for an instance made ahead of need (a
	// spare) only if it is free now, closing nothing and waiting for
	// nothing.
	TryAcquire() bool
	// Release gives back what one Acquire or TryAcquire took.
	Release()
}

// Unbudgeted is the Budget of a function prepared without one.
var Unbudgeted Budget = unbudgeted{}

type unbudgeted struct{}

func (unbudgeted) Acquire(context.Context) error { return nil }
func (unbudgeted) TryAcquire() bool              { return true }
func (unbudgeted) Release()                      {}

// BudgetOf returns spec's budget, Unbudgeted when it has none.
func (s Spec) BudgetOf() Budget {
	if s.Budget == nil {
		return Unbudgeted
	}
	return s.Budget
}

// Limits bound each call of a function.
type Limits struct {
	MemoryMB    int           // memory the instance may use
	Timeout     time.Duration // wall time of one call, init included
	LogBytes    int           // bytes of log output kept per call; more is truncated with a marker line
	ResultBytes int           // bytes of result accepted
	// Concurrency is how many calls one instance may serve at once, where
	// the kind can (Node.js); 0 or 1: one at a time.
	Concurrency int
}

// Call is one activation handed to a function.
type Call struct {
	Params json.RawMessage   // a JSON object
	Env    map[string]string // __OW_* values of this activation
	// Taken, when set, is called once by the backend when the call holds
	// its instance: an idle one taken, or a new one started or being
	// started (its memory not yet reserved, perhaps); always before the
	// user code runs, never after Invoke returned. Until then an idle
	// instance the caller counts on may still be in the pool: the invoker
	// ends its claim on one here, so that no other call counts on it too.
	// A call that fails before holding one may not call it.
	Taken func()
}

// Start says how the instance that served a call came to be.
type Start string

const (
	StartCold      Start = "cold"      // created for this call
	StartPrewarmed Start = "prewarmed" // taken from a prewarmed pool and initialised
	StartWarm      Start = "warm"      // reused from an earlier call
)

// Result is what a call produced.
type Result struct {
	Status   gust.Status     // success, application error (result has "error"), developer error
	Result   json.RawMessage // JSON object or array; {"error": …} on failure
	Logs     []string        // formatted lines, see LogBuffer
	InitTime time.Duration   // time spent initialising an instance; 0 when none was needed
	Start    Start
	TimedOut bool
}

// Backend prepares functions of the kinds it supports.
type Backend interface {
	// Kinds lists the exec kinds this backend runs.
	Kinds() []string
	// Prepare validates and compiles spec. An error of kind gust.KindInvalid
	// means the code itself is bad (reported at create time as 400).
	Prepare(ctx context.Context, spec Spec) (Function, error)
}

// Function is prepared code that can be called many times, concurrently.
type Function interface {
	// Invoke runs one call. Failures of the code are reported in Result with a
	// non-success status; an error means the platform failed.
	Invoke(ctx context.Context, call Call) (*Result, error)
	// Close releases instances and compiled code.
	Close(ctx context.Context) error
}

// InstancePool is implemented by functions that keep instances between
// calls, so that the invoker can count and shrink them.
type InstancePool interface {
	// Idle returns how many instances wait for a call.
	Idle() int
	// Trim closes idle instances for which expired says so, the longest
	// idle first, at most max of them (all when max ≤ 0), and returns how
	// many it closed. expired gets each idle instance's position (1 is the
	// most recently used, the next call's) and when it went idle.
	Trim(expired func(pos int, idleSince time.Time) bool, max int) int
}

// Prewarmer is implemented by functions that can make an instance ready
// ahead of a call the keep-alive policy expects; the next call reports
// StartPrewarmed.
type Prewarmer interface {
	Prewarm(ctx context.Context) error
}

// RuntimeInfo describes one kind a backend knows: whether it can run here
// and with which interpreter.
type RuntimeInfo struct {
	Kind        string `json:"kind"`
	Interpreter string `json:"interpreter,omitempty"` // host path or engine; empty for executables
	Available   bool   `json:"available"`
	Reason      string `json:"reason,omitempty"` // why not, when not available
}

// RuntimeLister is implemented by backends that know kinds they cannot run
// on this host (an interpreter is missing), so the API can say why.
type RuntimeLister interface {
	Runtimes() []RuntimeInfo
}
