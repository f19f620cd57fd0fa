// Package rental is the domain of tacklegate: members, catalog, units,
// reservations, orders, payments, deposits, inspections and evidence.
//
// It imports only the standard library (a test enforces it). The outside
// systems it needs — stores, the payment provider, the clock, notifiers — are
// declared here as small interfaces and implemented under adapters/.
package rental

import (
	"errors"
	"fmt"
)

// Kind classifies an Error. The gateway maps each kind to one HTTP status in
// gateway/errors.go; nothing else decides statuses.
type Kind string

const (
	KindInvalid      Kind = "invalid"      // the caller sent something we cannot accept
	KindUnauthorized Kind = "unauthorized" // no or bad credentials
	KindForbidden    Kind = "forbidden"    // credentials fine, role not allowed
	KindNotFound     Kind = "not_found"
	KindConflict     Kind = "conflict"     // state does not allow it (e.g. illegal order transition)
	KindRateLimited  Kind = "rate_limited" // too many attempts (SMS codes, logins); try again later
	KindUnavailable  Kind = "unavailable"  // temporarily cannot serve (dependency down, overloaded)
	KindUpstream     Kind = "upstream"     // WeChat, WeCom or WeChat Pay failed us
	KindInternal     Kind = "internal"     // a bug or an unexpected failure
)

// Error is the one error type of tacklegate.
//
// Message is safe to show to a user (Chinese or English, no internals); Err is
// the cause, for logs only. Op names the operation that failed, e.g.
// "store.CreateOrder", so a log line tells where without a stack.
type Error struct {
	Op      string
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string {
	var s string
	if e.Op != "" {
		s = e.Op + ": "
	}
	s += string(e.Kind)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error whose user-facing message is formatted from args.
func Errorf(op string, kind Kind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error around a cause. A nil cause yields nil so that
// `return rental.Wrap(op, kind, msg, err)` is safe at the end of a function.
func Wrap(op string, kind Kind, message string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Kind: kind, Message: message, Err: err}
}

// ErrorKind returns the kind of the outermost *Error in err's chain, or
// KindInternal for any other non-nil error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) && e.Kind != "" {
		return e.Kind
	}
	if err == nil {
		return ""
	}
	return KindInternal
}

// ErrorMessage returns the user-facing message of the outermost *Error that
// has one. Errors that are not *Error have no safe message: "" is returned and
// the caller shows a generic text.
func ErrorMessage(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Message != "" {
			return e.Message
		}
		err = e.Err
	}
	return ""
}
