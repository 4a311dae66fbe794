package wasm

import (
	"encoding/json"
	"fmt"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Messages of failed activations particular to wasm; those of breached
// limits are package sandbox's, shared with the process backend.
const (
	msgBadJSON = "The action did not produce a valid JSON response: %s"
	msgExit    = "The action exited with code %d."
	msgTrap    = "The action failed: %s"
	msgABI     = "The action broke the Gust reactor ABI: %s"
)

var emptyObject = json.RawMessage("{}")

// resultOf classifies a function's output: out holds its first bytes, size
// the full length. It returns a slice of out when the output is the result.
//
//   - size over limit: application error (OpenWhisk's choice), out unread;
//   - nothing but white space: success with {} (a function that only logs
//     is fine, and OpenWhisk runtimes treat "no return value" the same way);
//   - not a JSON object or array: developer error quoting the first 100 bytes;
//   - an object with a top-level "error" key: application error;
//   - else success.
func resultOf(out []byte, size, limit int) (gust.Status, json.RawMessage) {
	if size > limit {
		return gust.StatusApplicationError, gust.ErrorResult(sandbox.TooLargeMessage(size, limit))
	}
	body := trimSpace(out)
	switch {
	case len(body) == 0:
		return gust.StatusSuccess, emptyObject
	case body[0] != '{' && body[0] != '[' || !json.Valid(body):
		return gust.StatusDeveloperError, gust.ErrorResult(fmt.Sprintf(msgBadJSON, body[:min(len(body), 100)]))
	case body[0] == '{' && hasTopLevelKey(body, "error"):
		return gust.StatusApplicationError, body
	}
	return gust.StatusSuccess, body
}

// isErrorObject reports whether out is a JSON object with an "error" key.
func isErrorObject(out []byte) bool {
	body := trimSpace(out)
	return len(body) > 0 && body[0] == '{' && json.Valid(body) && hasTopLevelKey(body, "error")
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// hasTopLevelKey reports whether obj, a valid JSON object, has key among its
// own members. It scans instead of decoding: the check runs on every result
// and decoding into a map would allocate for every member. Keys match
// exactly, as in OpenWhisk (encoding/json's struct matching would also take
// "Error").
func hasTopLevelKey(obj []byte, key string) bool {
	i := 1 // past '{'
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return false
		}
		if obj[i] == ',' {
			i++
			continue
		}
		end := stringEnd(obj, i)
		if keyEquals(obj[i:end], key) {
			return true
		}
		i = skipSpace(obj, end) + 1 // past ':'
		i = skipValue(obj, skipSpace(obj, i))
	}
}

// keyEquals compares a quoted JSON string with key. Escaped keys (rare) are
// decoded; plain ones are compared in place.
func keyEquals(quoted []byte, key string) bool {
	raw := quoted[1 : len(quoted)-1]
	for _, c := range raw {
		if c == '\\' {
			var s string
			return json.Unmarshal(quoted, &s) == nil && s == key
		}
	}
	return string(raw) == key
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isSpace(b[i]) {
			i++
		}
		return i
	}
}

// appendEnvelope appends a reactor's input: {"value":params,"env":{…}}.
// params is trusted to be a JSON object (the invoker builds it). Encoding by
// hand into a reused buffer keeps the warm path free of allocations.
func appendEnvelope(dst []byte, params json.RawMessage, env map[string]string) []byte {
	if len(params) == 0 {
		params = emptyObject
	}
	dst = append(dst, `{"value":`...)
	dst = append(dst, params...)
	dst = append(dst, `,"env":{`...)
	first := true
	for k, v := range env {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = gust.AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = gust.AppendJSONString(dst, v)
	}
	return append(dst, "}}"...)
}
