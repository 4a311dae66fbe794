package gust

import "encoding/json"

// Exec kinds that run no user code in a sandbox.
const (
	// ExecSequence is the kind of an action that runs other actions in order.
	ExecSequence = "sequence"
	// ExecFeed is the kind of the feed actions Gust provides itself
	// (/whisk.system/alarms/alarm, …): they are answered in-process by the
	// feed providers, never by a sandbox, and users cannot create them.
	ExecFeed = "gust:feed"
)

// Package groups actions and gives them default parameters; a binding is a
// package that refers to another one and adds parameters of its own.
type Package struct {
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Binding     Binding   `json:"binding"` // zero ({}) for a plain package
	Parameters  KeyValues `json:"parameters"`
	Version     string    `json:"version"`
	Publish     bool      `json:"publish"`
	Annotations KeyValues `json:"annotations"`
	Updated     int64     `json:"updated"`
}

// Binding names the package a binding refers to.
type Binding struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// IsZero reports whether b refers to nothing, i.e. its package is not a binding.
func (b Binding) IsZero() bool { return b.Namespace == "" && b.Name == "" }

// Path returns the path of the package b refers to.
func (b Binding) Path() Path { return Path{Namespace: b.Namespace, Name: b.Name} }

// Path returns the package's path.
func (p *Package) Path() Path { return Path{Namespace: p.Namespace, Name: p.Name} }

// IsBinding reports whether the package is a binding.
func (p *Package) IsBinding() bool { return !p.Binding.IsZero() }

// MarshalJSON writes empty lists rather than null, as OpenWhisk does.
func (p Package) MarshalJSON() ([]byte, error) {
	type plain Package
	if p.Parameters == nil {
		p.Parameters = KeyValues{}
	}
	if p.Annotations == nil {
		p.Annotations = KeyValues{}
	}
	return json.Marshal(plain(p))
}
