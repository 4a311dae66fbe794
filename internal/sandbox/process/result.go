//go:build linux

package process

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Messages of failed activations particular to this backend, most of them
// OpenWhisk's own texts, which clients and tests match on
// (reference/openwhisk.md §2.7); those of breached limits are package
// sandbox's, shared with the wasm backend. msgInitTimeout is the timeout's
// with OpenWhisk's "during initialization", which only this backend has.
const (
	msgInitTimeout  = "The action exceeded its time limits of %[1]d milliseconds during initialization (timeout of %[1]d ms exceeded)."
	msgExited       = "The action did not produce a valid response and exited unexpectedly."
	msgInitExited   = "The action did not initialize and exited unexpectedly."
	msgNotObject    = "The action did not return a dictionary or array."
	msgBadLauncher  = "The action runtime sent a malformed reply."
	maxQuotedResult = 100
)

var emptyObject = json.RawMessage("{}")

// outcome is a classified reply.
type outcome struct {
	status gust.Status
	result json.RawMessage
	keep   bool // the worker may serve another call
}

// classify turns a reply line into a result. Launcher replies carry a
// prefix: R and the result, or E and a developer error message (a JSON
// string); any other is a malformed reply. Executables reply with the bare result, as actionloop does.
//
//   - over limit: application error (OpenWhisk's choice); the worker is
//     fine if the whole line was read, not after an overflow;
//   - not a JSON object or array: developer error;
//   - an object with a top-level "error": application error;
//   - else success.
//
// A developer error retires the worker: its state is unknown (OpenWhisk
// also discards the container), and an executable that broke the protocol
// may have more lines queued that would answer the next call.
func classify(r reply, limit int, prefixed bool) outcome {
	line, size := r.line, r.size
	if prefixed {
		if len(line) == 0 {
			return outcome{status: gust.StatusDeveloperError, result: gust.ErrorResult(msgBadLauncher)}
		}
		kind := line[0]
		line, size = line[1:], size-1
		if kind != 'R' && kind != 'E' {
			// Not a launcher's reply; without this, "{}" would be read as
			// the kind '{' and the result "}".
			return outcome{status: gust.StatusDeveloperError, result: gust.ErrorResult(msgBadLauncher)}
		}
		if kind == 'E' {
			var msg string
			if json.Unmarshal(line, &msg) != nil || msg == "" {
				msg = msgBadLauncher // an empty message would tell the developer nothing
			}
			return outcome{status: gust.StatusDeveloperError, result: gust.ErrorResult(msg)}
		}
	}
	if size > limit {
		// The worker is fine if the whole line was read; after an overflow
		// the rest of it is still coming.
		return outcome{status: gust.StatusApplicationError, result: gust.ErrorResult(sandbox.TooLargeMessage(size, limit)), keep: r.complete}
	}
	body := bytes.TrimSpace(line)
	if len(body) == 0 || body[0] != '{' && body[0] != '[' || !json.Valid(body) {
		return outcome{status: gust.StatusDeveloperError, result: gust.ErrorResult(msgNotObject + quote(body))}
	}
	if body[0] == '{' && hasErrorKey(body) {
		return outcome{status: gust.StatusApplicationError, result: body, keep: true}
	}
	return outcome{status: gust.StatusSuccess, result: body, keep: true}
}

// hasErrorKey reports whether a valid JSON object has a top-level "error"
// member. Most results do not even contain the word, which keeps the warm
// path free of decoding.
func hasErrorKey(obj []byte) bool {
	if !bytes.Contains(obj, []byte(`"error"`)) && !bytes.Contains(obj, []byte(`\u`)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	_, ok := m["error"]
	return ok
}

// quote shows the start of a bad reply, so the developer sees what came.
func quote(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxQuotedResult {
		b = b[:maxQuotedResult]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return " It returned: " + string(b)
}

// appendRequest appends one activation's request line:
// {"value":params, "activation_id":…, …}\n, where each __OW_X of env
// becomes the field "x", as OpenWhisk's /run body has them. params is
// compacted to keep the request on one line.
func appendRequest(dst []byte, params json.RawMessage, env map[string]string) ([]byte, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		params = emptyObject
	}
	dst = append(dst, `{"value":`...)
	if bytes.ContainsAny(params, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, params); err != nil {
			return nil, fmt.Errorf("parameters: %w", err)
		}
		dst = append(dst, buf.Bytes()...)
	} else {
		dst = append(dst, params...)
	}
	for k, v := range env {
		if len(k) <= 5 || k[:5] != "__OW_" {
			continue
		}
		dst = append(dst, ',')
		dst = gust.AppendJSONString(dst, lower(k[5:]))
		dst = append(dst, ':')
		dst = gust.AppendJSONString(dst, v)
	}
	return append(dst, "}\n"...), nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
