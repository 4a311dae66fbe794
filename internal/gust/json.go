package gust

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The activation record is encoded on every invoke; encoding/json's
// reflection (and the nested Marshal calls of custom marshalers) cost ~7 µs
// and ~30 allocations a record. These append-based encoders write the same
// bytes as encoding/json would (TestActivationJSONMatches, FuzzActivationJSON).

// AppendJSON appends a's JSON, the extended form OpenWhisk returns and Gust
// stores, to b. Raw JSON values (result, annotation values) are compacted
// and checked, as encoding/json does.
func (a *Activation) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"namespace":`...)
	b = AppendJSONString(b, a.Namespace)
	b = append(b, `,"name":`...)
	b = AppendJSONString(b, a.Name)
	b = append(b, `,"subject":`...)
	b = AppendJSONString(b, a.Subject)
	b = append(b, `,"activationId":`...)
	b = AppendJSONString(b, a.ActivationID)
	b = append(b, `,"start":`...)
	b = strconv.AppendInt(b, a.Start, 10)
	if a.End != 0 {
		// As OpenWhisk, a record that never ended (a trigger's) has
		// neither end nor duration.
		b = append(b, `,"end":`...)
		b = strconv.AppendInt(b, a.End, 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, a.Duration, 10)
	}
	if a.Cause != "" {
		b = append(b, `,"cause":`...)
		b = AppendJSONString(b, a.Cause)
	}
	b = append(b, `,"response":`...)
	b, err := a.Response.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"logs":`...)
	if a.Logs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, l := range a.Logs {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, l)
		}
		b = append(b, ']')
	}
	b = append(b, `,"version":`...)
	b = AppendJSONString(b, a.Version)
	b = append(b, `,"publish":`...)
	b = strconv.AppendBool(b, a.Publish)
	b = append(b, `,"annotations":`...)
	if b, err = a.Annotations.AppendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// AppendJSON appends the extended response form: status text, success,
// result, size.
func (r *Response) AppendJSON(b []byte) ([]byte, error) {
	result := r.Result
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	b = append(b, `{"status":`...)
	b = AppendJSONString(b, r.StatusCode.String())
	b = append(b, `,"success":`...)
	b = strconv.AppendBool(b, r.StatusCode == StatusSuccess)
	b = append(b, `,"result":`...)
	b, err := appendRaw(b, result)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(len(result)), 10)
	return append(b, '}'), nil
}

// AppendJSON appends kv as OpenWhisk's [{"key","value"}] list.
func (kv KeyValues) AppendJSON(b []byte) ([]byte, error) {
	if kv == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, e := range kv {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = AppendJSONString(b, e.Key)
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendRaw(b, e.Value); err != nil {
			return nil, err
		}
		if e.Init {
			b = append(b, `,"init":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendRaw appends a raw JSON value compacted, with HTML characters
// escaped as encoding/json writes a json.RawMessage; nil is null. Invalid
// JSON is an error.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	if isPlainCompact(raw) {
		return append(b, raw...), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &json.MarshalerError{Type: nil, Err: err}
	}
	out := buf.Bytes()
	// encoding/json also escapes <, > and & (and U+2028/9) in raw values.
	start := 0
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c == '<' || c == '>' || c == '&' {
			b = append(b, out[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		} else if c == 0xE2 && i+2 < len(out) && out[i+1] == 0x80 && out[i+2]&^1 == 0xA8 {
			b = append(b, out[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[out[i+2]&0xF])
			start = i + 3
			i += 2
		}
	}
	return append(b, out[start:]...), nil
}

// isPlainCompact reports whether raw is valid JSON that compacting and
// HTML-escaping would leave as it is: no whitespace outside strings, no
// <, >, &, U+2028 or U+2029, and valid UTF-8. The common case (results and
// annotations Gust built itself) is copied without a second pass.
func isPlainCompact(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= utf8.RuneSelf:
			return false // leave UTF-8 checks and U+2028/9 to the slow path
		case c == '<' || c == '>' || c == '&':
			return false
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			} else if c < 0x20 {
				return false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return !inString && json.Valid(raw)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it by default (HTML characters, U+2028 and U+2029 included;
// invalid UTF-8 as U+FFFD).
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
