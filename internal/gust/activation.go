package gust

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Status of an activation, with OpenWhisk's codes 0..3.
type Status int

const (
	StatusSuccess          Status = 0
	StatusApplicationError Status = 1
	StatusDeveloperError   Status = 2
	StatusInternalError    Status = 3
)

// String returns the status text OpenWhisk clients print.
func (s Status) String() string {
	switch s {
	case StatusSuccess:
		return "success"
	case StatusApplicationError:
		return "application error"
	case StatusDeveloperError:
		return "action developer error"
	default:
		return "whisk internal error"
	}
}

// Activation is the record of one run of an action.
type Activation struct {
	Namespace    string    `json:"namespace"`
	Name         string    `json:"name"`
	Subject      string    `json:"subject"`
	ActivationID string    `json:"activationId"`
	Start        int64     `json:"start"`
	End          int64     `json:"end,omitempty"`
	Duration     int64     `json:"duration"`
	Cause        string    `json:"cause,omitempty"`
	Response     Response  `json:"response"`
	Logs         []string  `json:"logs"`
	Version      string    `json:"version"`
	Publish      bool      `json:"publish"`
	Annotations  KeyValues `json:"annotations"`
}

// MarshalJSON writes the extended form (AppendJSON). A record that never
// ended (End is zero, a trigger's) has no end and no duration, as in
// OpenWhisk.
func (a Activation) MarshalJSON() ([]byte, error) {
	return a.AppendJSON(make([]byte, 0, 512))
}

// Response is an activation's outcome.
type Response struct {
	StatusCode Status          `json:"-"`
	Result     json.RawMessage `json:"result,omitempty"`
}

// MarshalJSON writes the extended response form: status text, success, result, size.
func (r Response) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 64+len(r.Result)))
}

// UnmarshalJSON reads the extended form back.
func (r *Response) UnmarshalJSON(b []byte) error {
	var v struct {
		Status     string          `json:"status"`
		StatusCode *Status         `json:"statusCode"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.Result = v.Result
	switch {
	case v.StatusCode != nil:
		r.StatusCode = *v.StatusCode
	case v.Status == "success":
		r.StatusCode = StatusSuccess
	case v.Status == "application error":
		r.StatusCode = StatusApplicationError
	case v.Status == "action developer error":
		r.StatusCode = StatusDeveloperError
	default:
		r.StatusCode = StatusInternalError
	}
	return nil
}

// ErrorResult builds a result {"error": msg}. HTML is not escaped, so
// messages such as "9 > 7 bytes" read as OpenWhisk writes them.
func ErrorResult(msg string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg})
	return bytes.TrimRight(b.Bytes(), "\n")
}

// NewActivationID returns a 32-hex-character id whose first 48 bits are the
// time in ms, so ids sort by time and listing can prune by it.
func NewActivationID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// NewActivationIDFor is NewActivationID for a record named name ("[pkg/]action",
// or a trigger's name): bits 48–63 are ActivationTag(name), so that a store
// can find the record by id with an exact subject instead of a wildcard
// over every record (see store.Activations.Get). 64 random bits remain.
func NewActivationIDFor(t time.Time, name string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16|uint64(ActivationTag(name)))
	if _, err := rand.Read(b[8:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// ActivationTag is a 16-bit hash of a record name (FNV-1a, folded).
func ActivationTag(name string) uint16 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return uint16(h>>16) ^ uint16(h)
}

// ActivationIDTag returns bits 48–63 of an id: the tag of its record's
// name when NewActivationIDFor made it, random bits otherwise.
func ActivationIDTag(id string) (uint16, bool) {
	if len(id) != 32 {
		return 0, false
	}
	b, err := hex.DecodeString(id[12:16])
	if err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

// ActivationIDTime returns the time embedded in a time-ordered id.
func ActivationIDTime(id string) (time.Time, bool) {
	if len(id) != 32 {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(id[:12])
	if err != nil {
		return time.Time{}, false
	}
	ms := int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
	return time.UnixMilli(ms), true
}

// ValidateActivationID checks the id's form with OpenWhisk's message.
func ValidateActivationID(id string) error {
	if len(id) != 32 {
		return Errorf(KindInvalid, "Activation id length is %d but must be 32.", len(id))
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return Errorf(KindInvalid, "Activation id %q is not valid: it must be 32 lowercase hex characters.", id)
		}
	}
	return nil
}
