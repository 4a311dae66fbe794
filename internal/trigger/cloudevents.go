package trigger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// CloudEvents 1.0 over HTTP (the HTTP protocol binding, structured and
// binary content modes) turned into trigger parameters: each context
// attribute (specversion, id, source, type, subject, time, …, extensions)
// becomes a parameter of its name, and the event's data becomes "data" —
// parsed JSON for a JSON content type, text for text, otherwise base64
// under "data_base64", as in the JSON event format.

// Media types of the structured and batched content modes.
const (
	ceStructured = "application/cloudevents+json"
	ceBatch      = "application/cloudevents-batch+json"
)

// ceRequired are the attributes every event has.
var ceRequired = []string{"specversion", "id", "source", "type"}

// ParseCloudEvent reads one CloudEvent from an HTTP request's headers and
// body and returns the trigger parameters as a JSON object. An invalid
// event is a KindInvalid error saying why.
func ParseCloudEvent(h http.Header, body []byte) (json.RawMessage, error) {
	media, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		media = ""
	}
	switch {
	case media == ceBatch:
		return nil, ceInvalid("batched events are not supported: send one event per request")
	case media == ceStructured:
		return parseStructured(body)
	case h.Get("Ce-Specversion") != "" || h.Get("Ce-Id") != "":
		return parseBinary(h, media, body)
	}
	return nil, ceInvalid("want a structured event (Content-Type: %s) or a binary one (ce-* headers)", ceStructured)
}

func ceInvalid(format string, args ...any) error {
	return gust.Errorf(gust.KindInvalid, "The CloudEvent is not valid: "+format+".", args...)
}

// parseStructured reads an event in the JSON event format.
func parseStructured(body []byte) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, ceInvalid("the body is not a JSON object")
	}
	if dec.More() {
		return nil, ceInvalid("the body holds more than one JSON value")
	}
	out := make(map[string]json.RawMessage, len(m))
	attrs := map[string]string{}
	for k, v := range m {
		if string(v) == "null" {
			continue // a null attribute is an absent one
		}
		switch k {
		case "data":
			out["data"] = v
			continue
		case "data_base64":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, ceInvalid("data_base64 must be a string")
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return nil, ceInvalid("data_base64 is not base64")
			}
			out["data_base64"] = v
			continue
		}
		if !validAttrName(k) {
			return nil, ceInvalid("attribute name %q must be lowercase letters and digits", k)
		}
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			return nil, ceInvalid("attribute %s must be a string, number or boolean", k)
		}
		out[k] = v
		var s string
		if json.Unmarshal(v, &s) == nil {
			attrs[k] = s
		} else if isRequired(k) || k == "time" || k == "dataschema" || k == "datacontenttype" || k == "subject" {
			return nil, ceInvalid("attribute %s must be a string", k)
		}
	}
	if _, ok := out["data"]; ok {
		if _, both := out["data_base64"]; both {
			return nil, ceInvalid("data and data_base64 are exclusive")
		}
	}
	if err := checkAttrs(attrs); err != nil {
		return nil, err
	}
	return marshalSorted(out)
}

// parseBinary reads an event whose attributes are ce-* headers and whose
// data is the body.
func parseBinary(h http.Header, media string, body []byte) (json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	attrs := map[string]string{}
	for name, vals := range h {
		lower := strings.ToLower(name)
		attr, ok := strings.CutPrefix(lower, "ce-")
		if !ok || len(vals) == 0 {
			continue
		}
		if !validAttrName(attr) {
			return nil, ceInvalid("attribute name %q must be lowercase letters and digits", attr)
		}
		v, err := url.PathUnescape(vals[0]) // header values are percent-encoded
		if err != nil {
			return nil, ceInvalid("header %s is not validly percent-encoded", name)
		}
		attrs[attr] = v
		out[attr], _ = json.Marshal(v)
	}
	if ct := h.Get("Content-Type"); ct != "" {
		attrs["datacontenttype"] = ct
		out["datacontenttype"], _ = json.Marshal(ct)
	}
	if err := checkAttrs(attrs); err != nil {
		return nil, err
	}
	if len(body) > 0 {
		key, data := binaryData(media, body)
		out[key] = data
	}
	return marshalSorted(out)
}

// binaryData renders a binary-mode body as the "data" parameter.
func binaryData(media string, body []byte) (string, json.RawMessage) {
	switch {
	case (media == "" || isJSONMedia(media)) && json.Valid(body):
		var b bytes.Buffer
		if json.Compact(&b, body) == nil {
			return "data", b.Bytes()
		}
	case strings.HasPrefix(media, "text/") || media == "" && isText(body):
		s, _ := json.Marshal(string(body))
		return "data", s
	}
	s, _ := json.Marshal(base64.StdEncoding.EncodeToString(body))
	return "data_base64", s
}

func isJSONMedia(m string) bool {
	return m == "application/json" || m == "text/json" || strings.HasSuffix(m, "+json")
}

func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && strings.ToValidUTF8(string(b), "\uFFFD") == string(b)
}

// checkAttrs enforces the spec's rules on the attributes both modes share.
func checkAttrs(attrs map[string]string) error {
	for _, k := range ceRequired {
		if attrs[k] == "" {
			return ceInvalid("the required attribute %s is missing", k)
		}
	}
	if v := attrs["specversion"]; v != "1.0" {
		return ceInvalid("specversion must be 1.0, not %q", v)
	}
	if _, err := url.Parse(attrs["source"]); err != nil {
		return ceInvalid("source %q is not a URI-reference", attrs["source"])
	}
	if v, ok := attrs["time"]; ok {
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return ceInvalid("time %q is not an RFC 3339 timestamp", v)
		}
	}
	if v, ok := attrs["dataschema"]; ok {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() {
			return ceInvalid("dataschema %q is not an absolute URI", v)
		}
	}
	if v, ok := attrs["datacontenttype"]; ok {
		if _, _, err := mime.ParseMediaType(v); err != nil {
			return ceInvalid("datacontenttype %q is not a media type", v)
		}
	}
	for _, k := range []string{"subject", "datacontenttype"} {
		if v, ok := attrs[k]; ok && v == "" {
			return ceInvalid("attribute %s must not be empty", k)
		}
	}
	return nil
}

func isRequired(k string) bool {
	for _, r := range ceRequired {
		if r == k {
			return true
		}
	}
	return false
}

// validAttrName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits.
func validAttrName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// marshalSorted writes an object with sorted keys, so equal events give
// equal parameters.
func marshalSorted(m map[string]json.RawMessage) (json.RawMessage, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(m[k])
	}
	b.WriteByte('}')
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("cloudevent parameters: invalid JSON")
	}
	return b.Bytes(), nil
}
