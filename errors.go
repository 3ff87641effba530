package plume

import (
	"errors"
	"fmt"
)

// Reasons a channel stops without a crash; Terminate receives them. Each is a
// [ShutdownError], so the client is sent phx_close, not phx_error.
var (
	// ErrLeft: the client left the channel (phx_leave).
	ErrLeft = Shutdown("left")
	// ErrClosed: the connection closed.
	ErrClosed = Shutdown("closed")
	// ErrDuplicateJoin: the client joined the same topic again.
	ErrDuplicateJoin = Shutdown("duplicate_join")
	// ErrDraining: the endpoint is shutting down.
	ErrDraining = Shutdown("draining")
	// ErrNormal stops a channel normally (Phoenix's :normal).
	ErrNormal = &ShutdownError{Reason: "normal"}
)

// Errors returned to callers.
var (
	// ErrChannelClosed is returned when pushing on a channel that has stopped.
	ErrChannelClosed = errors.New("plume: channel closed")
	// ErrConnClosed is returned when replying on a closed connection.
	ErrConnClosed = errors.New("plume: connection closed")
	// ErrNoMessage is returned by Channel.SocketRef outside a HandleIn call.
	ErrNoMessage = errors.New("plume: no message is being handled")
	// ErrBadPayload is returned for push and broadcast payloads that are not a
	// JSON object or binary.
	ErrBadPayload = errors.New("plume: push and broadcast payloads must be a JSON object or binary")
	// ErrRefused is returned by a connect callback to refuse a connection
	// without further detail (HTTP 403).
	ErrRefused = errors.New("plume: connection refused")
)

// ShutdownError is a graceful stop reason (Phoenix's {:shutdown, reason}).
// Returning one from a callback stops the channel and sends phx_close; any
// other error is a crash and sends phx_error.
type ShutdownError struct {
	Reason string
}

func (e *ShutdownError) Error() string { return "shutdown: " + e.Reason }

// Shutdown returns a graceful stop reason.
func Shutdown(reason string) error { return &ShutdownError{Reason: reason} }

// isGraceful reports whether err stops a channel without a crash.
func isGraceful(err error) bool {
	var se *ShutdownError
	return errors.As(err, &se)
}

// JoinError refuses a join with a reply payload (Phoenix's {:error, reply}).
// Any other error from Join is sent as {"reason": err.Error()}.
type JoinError struct {
	Reply any
}

func (e *JoinError) Error() string { return fmt.Sprintf("join refused: %v", e.Reply) }

// RefuseJoin returns a JoinError with the given reply payload.
func RefuseJoin(reply any) error { return &JoinError{Reply: reply} }

// panicError is the reason of a channel that panicked.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }
