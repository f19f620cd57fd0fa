package media

import (
	"errors"
	"fmt"
)

// Code names one kind of failure. Codes travel to the client in an "error"
// signal, so they are part of the wire protocol and never change meaning.
type Code string

// The codes media reports. The comment after each is the rental.Kind the
// gateway should map it to (media does not import rental; the gateway owns
// that mapping in its one error table).
const (
	CodeInvalid         Code = "invalid"           // malformed signal, bad id, SDP that does not parse → invalid
	CodeRoomFull        Code = "room_full"         // the room already has MaxParticipants → conflict
	CodeTooManyRooms    Code = "too_many_rooms"    // MaxRooms reached → unavailable
	CodeRoomMismatch    Code = "room_mismatch"     // OpenRoom with options that differ from the open room → conflict
	CodeRoomNotFound    Code = "room_not_found"    // → not_found
	CodeVideoNotAllowed Code = "video_not_allowed" // video offered in an audio-only room or by an audio-only participant; the call goes on with audio → invalid
	CodeSessionClosed   Code = "session_closed"    // this Session is over (left, replaced by a newer Join, or removed) → conflict; close the socket
	CodeClosed          Code = "closed"            // the Manager is shut down → unavailable
	CodeInternal        Code = "internal"          // pion failed us; the message is safe to show, the cause is in Err → internal
	CodeRecordingState  Code = "recording_state"   // start while recording, pause while paused, anything after stop → conflict
)

// Error is every error media returns. Message is safe to show a user; Err is
// the cause, for logs only.
type Error struct {
	Op      string
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := e.Op + ": " + string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: CodeRoomFull}) true for any error of
// that code, so callers can test codes without errors.As boilerplate.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Op == "" && t.Message == ""
}

// Sentinels for errors.Is.
var (
	ErrRoomFull        = &Error{Code: CodeRoomFull}
	ErrTooManyRooms    = &Error{Code: CodeTooManyRooms}
	ErrRoomMismatch    = &Error{Code: CodeRoomMismatch}
	ErrRoomNotFound    = &Error{Code: CodeRoomNotFound}
	ErrVideoNotAllowed = &Error{Code: CodeVideoNotAllowed}
	ErrSessionClosed   = &Error{Code: CodeSessionClosed}
	ErrClosed          = &Error{Code: CodeClosed}
	ErrInvalid         = &Error{Code: CodeInvalid}
)

func errorf(op string, code Code, format string, args ...any) *Error {
	return &Error{Op: op, Code: code, Message: fmt.Sprintf(format, args...)}
}

func internal(op, message string, err error) *Error {
	return &Error{Op: op, Code: CodeInternal, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal for any other non-nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
