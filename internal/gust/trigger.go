package gust

import (
	"encoding/json"
	"strings"
)

// Rule states.
const (
	RuleActive   = "active"
	RuleInactive = "inactive"
)

// Trigger is a named channel of events; firing it runs the action of each
// of its active rules.
type Trigger struct {
	Namespace   string                 `json:"namespace"`
	Name        string                 `json:"name"`
	Parameters  KeyValues              `json:"parameters"`
	Limits      struct{}               `json:"limits"` // OpenWhisk sends {}: triggers have no limits
	Version     string                 `json:"version"`
	Publish     bool                   `json:"publish"`
	Annotations KeyValues              `json:"annotations"`
	Rules       map[string]ReducedRule `json:"rules,omitempty"` // by "ns/rule"
	Updated     int64                  `json:"updated"`
}

// ReducedRule is a trigger's view of one of its rules.
type ReducedRule struct {
	Action EntityRef `json:"action"`
	Status string    `json:"status"`
}

// Path returns the trigger's path.
func (t *Trigger) Path() Path { return Path{Namespace: t.Namespace, Name: t.Name} }

// MarshalJSON writes empty lists rather than null, as OpenWhisk does.
func (t Trigger) MarshalJSON() ([]byte, error) {
	type plain Trigger
	if t.Parameters == nil {
		t.Parameters = KeyValues{}
	}
	if t.Annotations == nil {
		t.Annotations = KeyValues{}
	}
	return json.Marshal(plain(t))
}

// Rule connects a trigger to an action.
type Rule struct {
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Status      string    `json:"status,omitempty"` // in responses only: computed from the trigger
	Trigger     EntityRef `json:"trigger"`
	Action      EntityRef `json:"action"`
	Version     string    `json:"version"`
	Publish     bool      `json:"publish"`
	Annotations KeyValues `json:"annotations"`
	Updated     int64     `json:"updated"`
}

// Path returns the rule's path.
func (r *Rule) Path() Path { return Path{Namespace: r.Namespace, Name: r.Name} }

// MarshalJSON writes empty lists rather than null, as OpenWhisk does.
func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	if r.Annotations == nil {
		r.Annotations = KeyValues{}
	}
	return json.Marshal(plain(r))
}

// EntityRef is OpenWhisk's {path, name} form of a fully qualified name:
// path is "ns" or "ns/pkg".
type EntityRef struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

// RefOf returns the {path, name} form of p.
func RefOf(p Path) EntityRef { return EntityRef{Path: p.EntityNamespace(), Name: p.Name} }

// FullPath parses the reference back into a path.
func (r EntityRef) FullPath() (Path, error) {
	return ParsePath("/"+r.Path+"/"+r.Name, "_")
}

// String returns "ns[/pkg]/name" (no leading slash), the form of rule and
// action names in trigger activation logs.
func (r EntityRef) String() string { return r.Path + "/" + r.Name }

// NameRef is an entity name as clients send it: a string ("/ns/name",
// "name", "/_/pkg/name") or an object {path, name}.
type NameRef string

// UnmarshalJSON accepts both forms.
func (n *NameRef) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = NameRef(s)
		return nil
	}
	var r EntityRef
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	// The object's name is one entity name, as in OpenWhisk: a package
	// must not ride in it past path ({"path":"ns","name":"pkg/a"}).
	if strings.Contains(r.Name, "/") {
		return Errorf(KindInvalid, "The name %q is not a valid entity name.", r.Name)
	}
	if r.Path == "" {
		*n = NameRef(r.Name)
		return nil
	}
	*n = NameRef("/" + strings.TrimPrefix(r.Path, "/") + "/" + r.Name)
	return nil
}
