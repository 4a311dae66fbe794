package store

import (
	"encoding/json"
	"fmt"

	"github.com/gust-faas/gust/internal/gust"
)

// Package decodes the record as a package. Package documents are small and
// read once per invoke of a packaged action, so they are not cached.
func (r *Record) Package() (*gust.Package, error) {
	var p gust.Package
	if err := json.Unmarshal(r.Doc, &p); err != nil {
		return nil, fmt.Errorf("decode package %s: %w", r.Path, err)
	}
	return &p, nil
}

// Trigger decodes the record as a trigger.
func (r *Record) Trigger() (*gust.Trigger, error) {
	var t gust.Trigger
	if err := json.Unmarshal(r.Doc, &t); err != nil {
		return nil, fmt.Errorf("decode trigger %s: %w", r.Path, err)
	}
	return &t, nil
}

// Rule decodes the record as a rule.
func (r *Record) Rule() (*gust.Rule, error) {
	var x gust.Rule
	if err := json.Unmarshal(r.Doc, &x); err != nil {
		return nil, fmt.Errorf("decode rule %s: %w", r.Path, err)
	}
	return &x, nil
}

// ResolvedPackage is a package path followed through a binding.
type ResolvedPackage struct {
	// Package holds the actions: the package named, or the one its binding
	// refers to.
	Package *gust.Package
	// Binding is the binding that was named, nil for a plain package.
	Binding *gust.Package
	// Params are the inherited parameters: the package's, then the
	// binding's on top.
	Params gust.KeyValues
}

// ResolvePackage finds the package ns/name for a caller in namespace
// caller, following a binding to the package it refers to. Another
// namespace's package is visible only when published, and so is every
// package on the way: nothing else crosses namespaces.
func (e *Entities) ResolvePackage(ns, name, caller string) (*ResolvedPackage, error) {
	pkg, err := e.visiblePackage(gust.Path{Namespace: ns, Name: name}, caller)
	if err != nil {
		return nil, err
	}
	if !pkg.IsBinding() {
		return &ResolvedPackage{Package: pkg, Params: pkg.Parameters}, nil
	}
	target, err := e.visiblePackage(pkg.Binding.Path(), caller)
	if err != nil {
		return nil, err
	}
	if target.IsBinding() {
		// Bindings of bindings are refused when written; one found here was
		// made by hand or by a race, and must not send resolution in circles.
		return nil, gust.Errorf(gust.KindInvalid, "Cannot bind to another package binding.")
	}
	return &ResolvedPackage{Package: target, Binding: pkg, Params: target.Parameters.Merge(pkg.Parameters)}, nil
}

// visiblePackage returns the package at p when caller may see it.
func (e *Entities) visiblePackage(p gust.Path, caller string) (*gust.Package, error) {
	rec, err := e.GetType(p, TypePackage)
	if err != nil {
		if p.Namespace != caller {
			// Do not tell another namespace's private names from missing ones.
			return nil, gust.Forbidden(p.String())
		}
		return nil, err
	}
	pkg, err := rec.Package()
	if err != nil {
		return nil, err
	}
	if p.Namespace != caller && !pkg.Publish {
		return nil, gust.Forbidden(p.String())
	}
	return pkg, nil
}

// ResolvedAction is an action found through its path: directly, in a
// package, or through a binding.
type ResolvedAction struct {
	Record *Record
	Action *gust.Action // as stored and shared: copy before changing
	// Path is where the action lives; it differs from the path asked for
	// when that went through a binding.
	Path gust.Path
	// Params are the inherited parameters (package < binding), to merge
	// under the action's own; nil outside packages.
	Params gust.KeyValues
	// Binding is "ns/binding" when the action was reached through a
	// binding (the activation's "binding" annotation), else "".
	Binding string
}

// ResolveAction finds the action at p for a caller in namespace caller.
// Another namespace's actions are reachable only in its published
// packages (or through a binding of one); everything else is forbidden.
// This is the single place that resolves a package segment: invokes, web
// actions, sequences and rules all go through it.
func (e *Entities) ResolveAction(p gust.Path, caller string) (*ResolvedAction, error) {
	out := &ResolvedAction{Path: p}
	if p.Package != "" {
		rp, err := e.ResolvePackage(p.Namespace, p.Package, caller)
		if err != nil {
			return nil, err
		}
		out.Path = gust.Path{Namespace: rp.Package.Namespace, Package: rp.Package.Name, Name: p.Name}
		out.Params = rp.Params
		if rp.Binding != nil {
			out.Binding = p.Namespace + "/" + p.Package
		}
	} else if p.Namespace != caller {
		return nil, gust.Forbidden(p.String())
	}
	rec, err := e.GetType(out.Path, TypeAction)
	if err != nil {
		return nil, err
	}
	a, err := rec.Action()
	if err != nil {
		return nil, err
	}
	out.Record, out.Action = rec, a
	return out, nil
}

// InPackage returns the entities stored inside package ns/pkg.
func (e *Entities) InPackage(ns, pkg string) []*Record {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []*Record
	for _, rec := range e.cache {
		if !rec.deleted && rec.Path.Namespace == ns && rec.Path.Package == pkg {
			out = append(out, rec)
		}
	}
	return out
}
