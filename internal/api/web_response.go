package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gust-faas/gust/internal/gust"
)

// webResponse is a rendered web action result.
type webResponse struct {
	status int
	header http.Header // the action's headers (canonical names), Content-Type included
	body   []byte
}

// write sends the response. The action's headers replace the platform's of
// the same name (a web action may set its own CORS headers).
func (wr *webResponse) write(w http.ResponseWriter) error {
	h := w.Header()
	for k, vs := range wr.header {
		h[k] = vs
	}
	w.WriteHeader(wr.status)
	if len(wr.body) == 0 {
		return nil
	}
	if _, err := w.Write(wr.body); err != nil && err != http.ErrBodyNotAllowed {
		return err
	}
	return nil
}

// renderWeb turns an action result into the response for extension ext
// (reference/openwhisk.md §6). projected says result was selected by a path
// after the extension, and is then rendered as is rather than looked up in
// its default field (body, html, svg, text). It fails only with errors of
// kind invalid or not found: whatever an action returns, the caller gets a
// 4xx, never a 500.
func renderWeb(ext string, result json.RawMessage, projected bool) (*webResponse, error) {
	result = bytes.TrimSpace(result)
	if len(result) == 0 || !json.Valid(result) {
		return nil, gust.Errorf(gust.KindInvalid, msgWebProcessing)
	}
	switch ext {
	case ".json":
		if result[0] != '{' && result[0] != '[' {
			return nil, gust.Errorf(gust.KindInvalid, msgWebInvalidMedia, "application/json")
		}
		var b bytes.Buffer
		_ = json.Compact(&b, result) // valid JSON
		return textResponse("application/json", b.Bytes()), nil
	case ".html":
		return stringResponse(result, projected, "html", "text/html", "text/html; charset=UTF-8")
	case ".svg":
		return stringResponse(result, projected, "svg", "image/svg+xml", "image/svg+xml")
	case ".text":
		v := result
		if !projected && v[0] == '{' {
			if v = field(v, "body", "text"); v == nil {
				return nil, gust.Errorf(gust.KindNotFound, msgWebNoProperty)
			}
		}
		if v[0] == '"' {
			var s string
			_ = json.Unmarshal(v, &s)
			return textResponse("text/plain; charset=UTF-8", []byte(s)), nil
		}
		if v[0] == '{' || v[0] == '[' {
			var b bytes.Buffer
			_ = json.Indent(&b, v, "", "  ")
			return textResponse("text/plain; charset=UTF-8", b.Bytes()), nil
		}
		return textResponse("text/plain; charset=UTF-8", v), nil // number, true, false, null
	default:
		return renderHTTP(result)
	}
}

func textResponse(contentType string, body []byte) *webResponse {
	return &webResponse{status: http.StatusOK, header: http.Header{"Content-Type": {contentType}}, body: body}
}

// stringResponse renders .html and .svg: a string from the result's body
// field, else its named field (html, svg), or the projected value itself.
// Anything else, a result without either field included, is 400 "Response
// is not valid 'text/html'." (or 'image/svg+xml'): OpenWhisk's controller
// answers so, where .text answers 404 for a missing field (§6).
func stringResponse(result json.RawMessage, projected bool, name, media, contentType string) (*webResponse, error) {
	v := result
	if !projected && v[0] == '{' {
		v = field(v, "body", name)
	}
	var s string
	if v == nil || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return nil, gust.Errorf(gust.KindInvalid, msgWebInvalidMedia, media)
	}
	return textResponse(contentType, []byte(s)), nil
}

// field returns the first of the named fields present in the object v,
// trimmed, or nil. A field that is null is present: OpenWhisk looks at
// "body" whenever the result has one, so {"body":null,"text":"x"} is the
// text "null", not "x".
func field(v json.RawMessage, names ...string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return nil
	}
	for _, n := range names {
		if f, ok := obj[n]; ok {
			return bytes.TrimSpace(f)
		}
	}
	return nil
}

// renderHTTP renders a .http result: {statusCode, headers, body}.
func renderHTTP(result json.RawMessage) (*webResponse, error) {
	invalid := gust.Errorf(gust.KindInvalid, msgWebInvalidMedia, "message/http")
	var obj map[string]json.RawMessage
	if result[0] != '{' || json.Unmarshal(result, &obj) != nil {
		return nil, invalid
	}
	header := http.Header{}
	if hv, ok := obj["headers"]; ok {
		var hs map[string]json.RawMessage
		if json.Unmarshal(hv, &hs) != nil || hs == nil {
			return nil, invalid
		}
		for k, v := range hs {
			if !validHeaderName(k) {
				return nil, invalid
			}
			vals, ok := headerValues(v, nil)
			if !ok {
				return nil, invalid
			}
			if dropHeader(k) {
				continue
			}
			ck := http.CanonicalHeaderKey(k)
			header[ck] = append(header[ck], vals...)
		}
	}
	status := 0
	if sv, ok := obj["statusCode"]; ok {
		var ok2 bool
		if status, ok2 = statusCode(sv); !ok2 {
			return nil, invalid
		}
	}
	contentType := header.Get("Content-Type")
	header.Del("Content-Type")
	wr := &webResponse{status: status, header: header}

	body := bytes.TrimSpace(obj["body"])
	switch {
	case len(body) == 0 || string(body) == "null" || string(body) == `""`:
		// No entity, and 204 unless the action chose a status: OpenWhisk's
		// controller answers an absent, null and empty string body alike
		// (§6 "204 if no body"; "" is no body). A Content-Type header would
		// describe nothing.
		if wr.status == 0 {
			wr.status = http.StatusNoContent
		}
		return wr, nil
	case body[0] == '"':
		var s string
		if json.Unmarshal(body, &s) != nil {
			return nil, invalid
		}
		if contentType == "" {
			contentType = "text/html"
		}
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil || !strings.Contains(mt, "/") {
			return nil, gust.Errorf(gust.KindInvalid, msgWebUnknownType)
		}
		switch {
		case binaryMedia(mt, params, false):
			b, ok := decodeBase64(s)
			if !ok {
				return nil, gust.Errorf(gust.KindInvalid, msgWebContentType)
			}
			wr.body = b
		case jsonMedia(mt) && gust.LooksBase64(s):
			// A JSON-family body that looks like base64 is decoded: the
			// legacy way to return JSON from a .http action.
			wr.body, _ = decodeBase64(s)
		default:
			wr.body = []byte(s)
		}
		if _, ok := params["charset"]; !ok && !binaryMedia(mt, params, false) && !jsonMedia(mt) {
			contentType += "; charset=UTF-8"
		}
		wr.header.Set("Content-Type", contentType)
	default:
		// A JSON value: application/json unless the action named another
		// JSON-family type.
		mt := "application/json"
		if contentType != "" {
			var err error
			if mt, _, err = mime.ParseMediaType(contentType); err != nil {
				return nil, gust.Errorf(gust.KindInvalid, msgWebUnknownType)
			}
		}
		var b bytes.Buffer
		switch {
		case mt == "application/json":
			_ = json.Compact(&b, body)
			wr.header.Set("Content-Type", "application/json")
		case jsonMedia(mt):
			_ = json.Indent(&b, body, "", "  ")
			wr.header.Set("Content-Type", mt+"; charset=UTF-8")
		default:
			return nil, gust.Errorf(gust.KindInvalid, msgWebContentType)
		}
		wr.body = b.Bytes()
	}
	if wr.status == 0 {
		wr.status = http.StatusOK
	}
	return wr, nil
}

// statusCode reads statusCode: a whole number, or a string of one, that
// names a known HTTP status from 200 to 599 (1xx are not final answers).
func statusCode(v json.RawMessage) (int, bool) {
	v = bytes.TrimSpace(v)
	var n int
	switch {
	case len(v) > 0 && v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f != math.Trunc(f) || f < 0 || f > 999 {
			return 0, false
		}
		n = int(f)
	}
	if n < 200 || n > 599 || http.StatusText(n) == "" {
		return 0, false
	}
	return n, true
}

// headerValues flattens a header value: strings, numbers and booleans,
// or arrays of them for repeated headers.
func headerValues(v json.RawMessage, out []string) ([]string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil || !validHeaderValue(s) {
			return nil, false
		}
		return append(out, s), true
	case '[':
		var arr []json.RawMessage
		if json.Unmarshal(v, &arr) != nil {
			return nil, false
		}
		for _, e := range arr {
			var ok bool
			if out, ok = headerValues(e, out); !ok {
				return nil, false
			}
		}
		return out, true
	case 't', 'f':
		if string(v) != "true" && string(v) != "false" {
			return nil, false
		}
		return append(out, string(v)), true
	case '{', 'n':
		return nil, false
	}
	if _, err := strconv.ParseFloat(string(v), 64); err != nil {
		return nil, false
	}
	return append(out, string(v)), true
}

// validHeaderName reports an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters (but tab), which would split
// or corrupt the response head.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// dropHeader reports headers that describe the connection or framing, which
// the server owns: an action setting them would corrupt the response.
func dropHeader(k string) bool {
	switch strings.ToLower(k) {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer", "te", "proxy-connection":
		return true
	}
	return false
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil
}
