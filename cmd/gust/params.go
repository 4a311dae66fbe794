package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/gust-faas/gust/internal/gust"
)

// parseParamValue reads the VALUE of `-p KEY VALUE` as wsk does: JSON when
// it parses (so `-p n 1` is a number and `-p o '{"a":1}'` an object), else
// the text as a string (`-p name world`).
func parseParamValue(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(s)) == nil {
			return b.Bytes()
		}
	}
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return b
}

// parseParamFile reads the contents of a `-P FILE`: a JSON object whose
// members become parameters, in key order so that requests are stable.
func parseParamFile(data []byte) (gust.KeyValues, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("want a JSON object, not null")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kv := make(gust.KeyValues, 0, len(keys))
	for _, k := range keys {
		var b bytes.Buffer
		if err := json.Compact(&b, m[k]); err != nil {
			return nil, fmt.Errorf("member %q: %w", k, err)
		}
		kv = append(kv, gust.KeyValue{Key: k, Value: b.Bytes()})
	}
	return kv, nil
}

// buildParams merges parameter files, then -p pairs on top (later wins).
// It returns nil when nothing was given, so an update leaves the server's
// list alone.
func buildParams(files []string, pairs [][2]string) (gust.KeyValues, error) {
	var kv gust.KeyValues
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err // *PathError names the file
		}
		fromFile, err := parseParamFile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		kv = kv.Merge(fromFile)
	}
	for _, p := range pairs {
		kv = kv.Merge(gust.KeyValues{{Key: p[0], Value: parseParamValue(p[1])}})
	}
	return kv, nil
}

// paramsObject renders parameters as the JSON object an invoke sends.
func paramsObject(kv gust.KeyValues) (json.RawMessage, error) {
	if len(kv) == 0 {
		return nil, nil
	}
	return json.Marshal(kv.Object(false))
}
