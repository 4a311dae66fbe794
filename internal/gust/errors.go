// Package gust holds Gust's domain vocabulary: entities (actions, activations),
// their validation rules and the error kinds every layer speaks. It imports
// only the standard library.
package gust

import (
	"errors"
	"fmt"
)

// Kind classifies an error once, where it is raised; the API edge maps each
// kind to one HTTP status. Values are append-only.
type Kind int

const (
	KindInternal     Kind = iota // a bug or a broken dependency; details are logged, not shown
	KindInvalid                  // 400: the request is malformed or violates a rule
	KindUnauthorized             // 401: missing or wrong credentials
	KindForbidden                // 403: authenticated but not entitled
	KindNotFound                 // 404
	KindConflict                 // 409
	KindTooLarge                 // 413
	KindThrottled                // 429
	KindUnavailable              // 503
	KindMethod                   // 405
	KindTimeout                  // 202 for a blocking wait that outlived its limit
)

// Error is an error with a kind and a message safe to show to the caller.
type Error struct {
	Kind    Kind
	Message string
	Err     error // the cause, for logs; never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind with a formatted, caller-visible message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an internal *Error whose cause is err and whose caller-visible
// message is msg.
func Wrap(kind Kind, msg string, err error) *Error {
	return &Error{Kind: kind, Message: msg, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, KindInternal otherwise.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// MessageOf returns the caller-visible message of err.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}

// Messages used by OpenWhisk clients; kept verbatim for compatibility.
const (
	MsgNotFound      = "The requested resource does not exist."
	MsgExists        = "resource already exists"
	MsgOtherColl     = "Resource by this name exists but is not in this collection."
	MsgConcurrent    = "Concurrent modification to resource detected."
	MsgUnauthorized  = "The supplied authentication is invalid"
	MsgNoAuth        = "The resource requires authentication, which was not supplied with the request"
	MsgUnavailable   = "The server is currently unavailable (because it is overloaded or down for maintenance)."
	MsgMethod        = "The requested method is not allowed for this resource."
	MsgReservedParam = "Request defines parameters that are not allowed (e.g., reserved properties)."
)

// ErrNotFound is the shared not-found error.
var ErrNotFound = Errorf(KindNotFound, MsgNotFound)

// Forbidden returns OpenWhisk's 403 for resource.
func Forbidden(resource string) *Error {
	return Errorf(KindForbidden, "The supplied authentication is not authorized to access '%s'.", resource)
}
