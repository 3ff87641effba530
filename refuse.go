package plume

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Refusals a client can understand.
//
// A browser never sees the HTTP status of a failed WebSocket upgrade: a
// Connect refused with 403 reaches the page as close code 1006, and
// phoenix.js keeps reconnecting with backoff, forever, with no way to tell
// "bad credentials" from "server down". With [Socket.RefuseWithClose] set, a
// refused Connect instead accepts the upgrade and closes the connection at
// once with a close code in the private-use range and a short reason, which
// phoenix.js hands to socket.onClose callbacks:
//
//	socket.onClose(e => {
//	  if (e.code === 4401) {      // plume.CloseUnauthorized
//	    socket.disconnect()       // stop retrying
//	    showLogin(e.reason)
//	  }
//	})
//
// See docs/refusals.md.

// Close codes of connections refused by Connect when the socket sets
// [Socket.RefuseWithClose]. They mirror the HTTP statuses 401 and 403 in the
// 4000-4999 range that RFC 6455 leaves to applications.
const (
	// CloseUnauthorized (4401): Connect returned an error that wraps
	// [ErrUnauthorized]; the client should get new credentials before it
	// connects again.
	CloseUnauthorized = 4401
	// CloseForbidden (4403): Connect returned any other error.
	CloseForbidden = 4403
)

// maxCloseReason is the most bytes a close frame's reason may hold (RFC 6455:
// a control frame's payload is at most 125 bytes, 2 of which are the code).
const maxCloseReason = 123

// ErrUnauthorized refuses a connection for missing, invalid or expired
// credentials. Return it (or an error wrapping it) from Socket.Connect; with
// [Socket.RefuseWithClose] the client sees close code 4401 and the error's
// message as the reason, so a page can ask for a new token instead of
// retrying.
var ErrUnauthorized error = &CloseError{Code: CloseUnauthorized, Reason: "unauthorized"}

// CloseCoder is implemented by Connect errors that choose the close code a
// refused client sees when the socket sets [Socket.RefuseWithClose]. Codes
// outside 3000-4999 (the ranges RFC 6455 leaves to libraries and
// applications) are replaced by [CloseForbidden].
type CloseCoder interface {
	CloseCode() int
}

// CloseError refuses a connection with a chosen close code and reason, for
// sockets that set [Socket.RefuseWithClose]: return
// &plume.CloseError{Code: 4429, Reason: "too many connections"} from
// Connect. Without RefuseWithClose it refuses with HTTP 403 like any error.
type CloseError struct {
	// Code is the WebSocket close code, 3000-4999.
	Code int
	// Reason is the text the client receives; keep it short (at most 123
	// bytes reach the client) and free of secrets.
	Reason string
}

// Error returns the reason.
func (e *CloseError) Error() string { return e.Reason }

// CloseCode returns Code.
func (e *CloseError) CloseCode() int { return e.Code }

// connectRefusal marks an error returned by Socket.Connect, as opposed to a
// failed vsn or origin check, which keep their HTTP 403.
type connectRefusal struct{ err error }

func (r *connectRefusal) Error() string { return r.err.Error() }
func (r *connectRefusal) Unwrap() error { return r.err }

// closeCodeFor returns the close code for a refused Connect: the error's
// own (CloseCoder) if valid, 4401 for ErrUnauthorized, else 4403.
func closeCodeFor(err error) int {
	var cc CloseCoder
	if errors.As(err, &cc) {
		if code := cc.CloseCode(); code >= 3000 && code <= 4999 {
			return code
		}
		return CloseForbidden
	}
	if errors.Is(err, ErrUnauthorized) {
		return CloseUnauthorized
	}
	return CloseForbidden
}

// closeReason turns an error message into a close reason: valid UTF-8,
// control characters replaced by spaces, cut at a character boundary to at
// most 123 bytes.
func closeReason(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxCloseReason {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// refuseWithClose completes the WebSocket upgrade of a connection Connect
// refused, sends a close frame with the refusal's code and reason, and
// waits (at most 2s) for the client's close frame before dropping the TCP
// connection, so that the client reads the close frame rather than a reset.
func (e *Endpoint) refuseWithClose(w http.ResponseWriter, r *http.Request, s *Socket, err error) {
	nc, rw, _, uerr := upgrader.Upgrade(r, w)
	if uerr != nil {
		if nc != nil {
			nc.Close()
		}
		return
	}
	defer nc.Close()
	code := closeCodeFor(err)
	reason := closeReason(err.Error())
	nc.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if ws.WriteFrame(nc, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), reason))) != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	awaitClose(rw.Reader)
}

// awaitClose discards client frames until a close frame, an error or the
// read deadline.
func awaitClose(br *bufio.Reader) {
	for {
		h, err := readHeader(br)
		if err != nil || h.OpCode == ws.OpClose {
			return
		}
		if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
			return
		}
	}
}
