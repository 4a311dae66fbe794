package gust

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Action is a stateless function: its code (exec), default parameters and limits.
type Action struct {
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Exec        Exec      `json:"exec"`
	Parameters  KeyValues `json:"parameters"`
	Limits      Limits    `json:"limits"`
	Version     string    `json:"version"`
	Publish     bool      `json:"publish"`
	Annotations KeyValues `json:"annotations"`
	Updated     int64     `json:"updated"`
}

// Exec is an action's code and the kind of runtime that runs it.
type Exec struct {
	Kind       string   `json:"kind"`
	Code       string   `json:"code,omitempty"`
	Image      string   `json:"image,omitempty"`
	Binary     bool     `json:"binary"`
	Main       string   `json:"main,omitempty"`
	Components []string `json:"components,omitempty"`
}

// Limits bound one action's activations.
type Limits struct {
	Timeout     int `json:"timeout"`             // ms
	Memory      int `json:"memory"`              // MB
	Logs        int `json:"logs"`                // MB
	Concurrency int `json:"concurrency"`         // activations per instance
	Instances   int `json:"instances,omitempty"` // 0: the namespace limit
}

// AppendJSON appends l as encoding/json writes it.
func (l Limits) AppendJSON(b []byte) []byte {
	b = append(b, `{"timeout":`...)
	b = strconv.AppendInt(b, int64(l.Timeout), 10)
	b = append(b, `,"memory":`...)
	b = strconv.AppendInt(b, int64(l.Memory), 10)
	b = append(b, `,"logs":`...)
	b = strconv.AppendInt(b, int64(l.Logs), 10)
	b = append(b, `,"concurrency":`...)
	b = strconv.AppendInt(b, int64(l.Concurrency), 10)
	if l.Instances != 0 {
		b = append(b, `,"instances":`...)
		b = strconv.AppendInt(b, int64(l.Instances), 10)
	}
	return append(b, '}')
}

// LimitsPatch is a partial Limits as sent on PUT.
type LimitsPatch struct {
	Timeout     *int `json:"timeout,omitempty"`
	Memory      *int `json:"memory,omitempty"`
	Logs        *int `json:"logs,omitempty"`
	Concurrency *int `json:"concurrency,omitempty"`
	Instances   *int `json:"instances,omitempty"`
}

// Apply returns l with the patch's fields set.
func (p *LimitsPatch) Apply(l Limits) Limits {
	if p == nil {
		return l
	}
	if p.Timeout != nil {
		l.Timeout = *p.Timeout
	}
	if p.Memory != nil {
		l.Memory = *p.Memory
	}
	if p.Logs != nil {
		l.Logs = *p.Logs
	}
	if p.Concurrency != nil {
		l.Concurrency = *p.Concurrency
	}
	if p.Instances != nil {
		l.Instances = *p.Instances
	}
	return l
}

// Validate checks l against the system's bounds, with OpenWhisk's messages.
func (l Limits) Validate(sys SystemLimits) error {
	switch {
	case l.Timeout < sys.MinActionTimeout || l.Timeout > sys.MaxActionTimeout:
		return Errorf(KindInvalid, "The request content was malformed:\ntimeout %d milliseconds is outside the allowed range of %d to %d milliseconds.", l.Timeout, sys.MinActionTimeout, sys.MaxActionTimeout)
	case l.Memory < sys.MinActionMemory || l.Memory > sys.MaxActionMemory:
		return Errorf(KindInvalid, "The request content was malformed:\nmemory %d MB is outside the allowed range of %d to %d MB.", l.Memory, sys.MinActionMemory, sys.MaxActionMemory)
	case l.Logs < sys.MinActionLogs || l.Logs > sys.MaxActionLogs:
		return Errorf(KindInvalid, "The request content was malformed:\nlogs %d MB is outside the allowed range of %d to %d MB.", l.Logs, sys.MinActionLogs, sys.MaxActionLogs)
	case l.Concurrency < sys.MinActionConcurrency || l.Concurrency > sys.MaxActionConcurrency:
		return Errorf(KindInvalid, "The request content was malformed:\nconcurrency %d is outside the allowed range of %d to %d.", l.Concurrency, sys.MinActionConcurrency, sys.MaxActionConcurrency)
	case l.Instances < 0 || l.Instances > sys.ConcurrentInvocations:
		return Errorf(KindInvalid, "The request content was malformed:\nMax action instance concurrency must not exceed your namespace concurrency of %d.", sys.ConcurrentInvocations)
	}
	return nil
}

// LooksBase64 reports whether code is treated as binary (base64) the way
// OpenWhisk decides it: trimmed, non-empty, length a multiple of 4 and only
// base64 characters with valid padding.
func LooksBase64(code string) bool {
	s := strings.TrimSpace(code)
	if s == "" || len(s)%4 != 0 {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

// DecodeCode returns the bytes of an exec's code: base64-decoded when binary.
func (e Exec) DecodeCode() ([]byte, error) {
	if !e.Binary {
		return []byte(e.Code), nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Code))
	if err != nil {
		return nil, Errorf(KindInvalid, "The request content was malformed:\nexec.code is not valid base64: %v", err)
	}
	return b, nil
}

// Path returns the action's path.
func (a *Action) Path() Path {
	ns, pkg, _ := strings.Cut(a.Namespace, "/")
	return Path{Namespace: ns, Package: pkg, Name: a.Name}
}

// RecordName is the name its activation records are listed under:
// "[pkg/]name", as the activation list's name filter takes it.
func (a *Action) RecordName() string {
	if _, pkg, ok := strings.Cut(a.Namespace, "/"); ok && pkg != "" {
		return pkg + "/" + a.Name
	}
	return a.Name
}

// MarshalJSON writes an action in OpenWhisk's field order.
func (a Action) MarshalJSON() ([]byte, error) {
	type plain Action
	if a.Parameters == nil {
		a.Parameters = KeyValues{}
	}
	if a.Annotations == nil {
		a.Annotations = KeyValues{}
	}
	return json.Marshal(plain(a))
}

// BumpVersion returns the semantic version v with its patch number raised by one.
func BumpVersion(v string) string {
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return "0.0.1"
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch+1)
}

// ValidVersion reports whether v is a "major.minor.patch" version.
func ValidVersion(v string) bool {
	var a, b, c int
	n, err := fmt.Sscanf(v, "%d.%d.%d", &a, &b, &c)
	return err == nil && n == 3 && fmt.Sprintf("%d.%d.%d", a, b, c) == v
}
