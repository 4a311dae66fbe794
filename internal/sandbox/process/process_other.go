//go:build !linux

package process

import (
	"context"
	"errors"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// The process sandbox is Linux-only (namespaces, cgroups, seccomp). On
// other systems the package builds, so the gust binary does, and reports
// every kind as unavailable.

var errNotLinux = errors.New("the process sandbox runs on Linux only")

// MaybeRunInit does nothing outside Linux.
func MaybeRunInit() {}

// Backend reports its kinds as unavailable.
type Backend struct{ cfg Config }

var _ sandbox.Backend = (*Backend)(nil)

// New returns a Backend that runs nothing.
func New(cfg Config) (*Backend, error) { return &Backend{cfg: cfg}, nil }

// Kinds is empty: nothing can run here.
func (b *Backend) Kinds() []string { return nil }

// Runtimes lists the kinds, each unavailable.
func (b *Backend) Runtimes() []RuntimeInfo {
	kinds, _ := newKinds(b.cfg)
	out := make([]RuntimeInfo, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, RuntimeInfo{Kind: k.name, Interpreter: k.interpreter, Reason: errNotLinux.Error()})
	}
	return out
}

// Prepare always fails.
func (b *Backend) Prepare(context.Context, sandbox.Spec) (sandbox.Function, error) {
	return nil, gust.Wrap(gust.KindUnavailable, "The process sandbox is not available on this invoker.", errNotLinux)
}

// Close does nothing.
func (b *Backend) Close(context.Context) error { return nil }
