package gust

import (
	"bytes"
	"encoding/json"
	"strings"
)

// KeyValue is one entry of an entity's "parameters" or "annotations" list.
type KeyValue struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	Init  bool            `json:"init,omitempty"`
}

// KeyValues is an ordered list of parameters or annotations.
type KeyValues []KeyValue

// Get returns the value stored under key.
func (kv KeyValues) Get(key string) (json.RawMessage, bool) {
	for _, e := range kv {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// IsTrue reports whether key holds JSON true (or the string "true").
func (kv KeyValues) IsTrue(key string) bool {
	v, ok := kv.Get(key)
	if !ok {
		return false
	}
	v = bytes.TrimSpace(v)
	return string(v) == "true" || string(v) == `"true"`
}

// Set replaces key's value, or appends it.
func (kv KeyValues) Set(key string, value any) KeyValues {
	raw, ok := value.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(value)
		if err != nil {
			panic(err) // values passed here are plain Go values built by Gust
		}
		raw = b
	}
	for i := range kv {
		if kv[i].Key == key {
			kv[i].Value = raw
			return kv
		}
	}
	return append(kv, KeyValue{Key: key, Value: raw})
}

// Merge returns kv with every entry of over set on top (later wins).
func (kv KeyValues) Merge(over KeyValues) KeyValues {
	out := append(KeyValues(nil), kv...)
	for _, e := range over {
		replaced := false
		for i := range out {
			if out[i].Key == e.Key {
				out[i] = e
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// Delete returns kv without the given keys.
func (kv KeyValues) Delete(keys ...string) KeyValues {
	out := kv[:0:0]
	for _, e := range kv {
		drop := false
		for _, k := range keys {
			if e.Key == k {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, e)
		}
	}
	return out
}

// Size is the JSON size of the list, used against the parameter size limit.
func (kv KeyValues) Size() int {
	n := 2
	for _, e := range kv {
		n += len(e.Key) + len(e.Value) + 20
	}
	return n
}

// Validate checks that keys are present and values are JSON.
func (kv KeyValues) Validate(what string) error {
	seen := make(map[string]bool, len(kv))
	for _, e := range kv {
		if e.Key == "" {
			return Errorf(KindInvalid, "The request content was malformed:\n%s must have a non-empty key.", what)
		}
		if seen[e.Key] {
			return Errorf(KindInvalid, "The request content was malformed:\n%s key %q is defined more than once.", what, e.Key)
		}
		seen[e.Key] = true
		if len(e.Value) == 0 {
			return Errorf(KindInvalid, "The request content was malformed:\n%s %q has no value.", what, e.Key)
		}
		if !json.Valid(e.Value) {
			return Errorf(KindInvalid, "The request content was malformed:\n%s %q is not valid JSON.", what, e.Key)
		}
		if e.Init {
			if _, err := e.EnvValue(); err != nil {
				return Errorf(KindInvalid, "The request content was malformed:\n%s", MessageOf(err))
			}
		}
	}
	return nil
}

// EnvValue returns an init parameter's value as the environment variable
// its instances get: a JSON string as it is, other JSON as text. A key
// with '=' or NUL, or a value with NUL, cannot be an environment variable
// (exec and WASI refuse it), so it is an error naming the parameter.
func (e KeyValue) EnvValue() (string, error) {
	if strings.ContainsAny(e.Key, "=\x00") {
		return "", Errorf(KindInvalid, "The init parameter %q cannot be an environment variable of the action's instances: its key must not contain '=' or NUL.", e.Key)
	}
	var s string
	if json.Unmarshal(e.Value, &s) != nil {
		s = string(e.Value)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", Errorf(KindInvalid, "The init parameter %q cannot be an environment variable of the action's instances: its value must not contain NUL.", e.Key)
	}
	return s, nil
}

// Object renders the list as one JSON object (later keys win), skipping
// entries marked init when skipInit is set.
func (kv KeyValues) Object(skipInit bool) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(kv))
	for _, e := range kv {
		if skipInit && e.Init {
			continue
		}
		m[e.Key] = e.Value
	}
	return m
}
