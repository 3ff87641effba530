package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// WebSocket close codes the client uses or reports.
const (
	CloseNormal     = 1000 // Close, Disconnect and heartbeat timeouts
	CloseProtocol   = 1002 // a frame that breaks RFC 6455
	CloseNoStatus   = 1005 // a close frame without a code
	CloseAbnormal   = 1006 // the connection ended without a close frame
	CloseTooBig     = 1009 // a message above MaxMessageSize
	closeWaitPeriod = time.Second
)

// CloseEvent describes how a connection closed, as a WebSocket close event
// does: the code and reason of the close frame received (1006 when the
// connection ended without one) and whether the close handshake completed.
type CloseEvent struct {
	Code     int
	Reason   string
	WasClean bool
}

const (
	opText   = ws.OpText
	opBinary = ws.OpBinary
)

type connState int

const (
	connConnecting connState = iota
	connOpen
	connClosing
	connClosed
)

// conn is one WebSocket connection of a Socket, phoenix.js's Connection:
// everything that belongs to it (its joins, its pings) ends with it. Fields
// above the writer's are guarded by the socket's lock.
type conn struct {
	s     *Socket
	state connState
	// closing: the socket closed it (Disconnect, Close, heartbeat
	// timeout), as opposed to the server or the network.
	closing bool
	// ended: the socket no longer wants it, so Connect makes a new one.
	ended bool
	// reconnect: a heartbeat timeout closed it; reconnect once closed.
	reconnect       bool
	channelsErrored bool
	opened          bool
	joins           map[*Channel]string
	pings           map[string]func(error)
	cancelDial      context.CancelFunc
	nc              net.Conn      // WebSocket transport
	lp              *lpLink       // long-poll transport
	done            chan struct{} // closed once the close was handled

	wmu       sync.Mutex
	queue     [][]byte
	writing   bool
	wclosed   bool          // a close frame is queued: nothing may follow it
	closeSent chan struct{} // closed once the close frame was written or writing failed
}

func newConn(s *Socket) *conn {
	return &conn{
		s:     s,
		joins: make(map[*Channel]string),
		pings: make(map[string]func(error)),
		done:  make(chan struct{}),
	}
}

func (c *conn) isOpen() bool { return c.state == connOpen }

// carried reports whether the channel's join with joinRef was sent over c.
func (c *conn) carried(ch *Channel, joinRef string) bool {
	r, ok := c.joins[ch]
	return ok && r == joinRef
}

// dial opens the connection and then reads it until it ends. It runs on its
// own goroutine, counted in s.wg.
func (c *conn) dial(ctx context.Context) {
	s := c.s
	defer s.wg.Done()
	if s.opts.Transport == TransportLongPoll {
		c.runLongPoll(ctx)
		return
	}
	// User funcs run here, outside the socket's lock, on every attempt.
	u, protocols, err := s.dialTarget()
	var nc net.Conn
	var br *bufio.Reader
	if err == nil {
		d := ws.Dialer{
			Timeout:   s.opts.DialTimeout,
			Protocols: protocols,
			NetDial:   s.opts.NetDial,
			TLSConfig: s.opts.TLSConfig,
		}
		if s.opts.DialTimeout == 0 {
			d.Timeout = s.opts.Timeout
		}
		if len(s.opts.Header) > 0 {
			d.Header = ws.HandshakeHeaderHTTP(s.opts.Header)
		}
		nc, br, _, err = d.Dial(ctx, u)
	}
	c.cancelDial()
	s.mu.Lock()
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		err = dialError(err)
		if c.closing {
			// Closing a connection that is still connecting is not an
			// error to report (phoenix.js mutes it too).
			err = nil
		}
		s.connClosed(c, CloseEvent{Code: CloseAbnormal}, err)
		s.mu.Unlock()
		return
	}
	if c.state != connConnecting {
		// Closed while dialing.
		nc.Close()
		s.connClosed(c, CloseEvent{Code: CloseAbnormal}, nil)
		s.mu.Unlock()
		return
	}
	c.nc = nc
	c.state = connOpen
	c.opened = true
	s.onConnOpen(c)
	s.mu.Unlock()
	c.readLoop(br)
}

// dialError turns a handshake status error into a readable one.
func dialError(err error) error {
	var se ws.StatusError
	if errors.As(err, &se) {
		return &HandshakeError{Status: int(se)}
	}
	return err
}

// HandshakeError reports a server that answered the WebSocket upgrade with
// an HTTP status other than 101: 403 when its connect callback refused the
// connection, 503 while it drains.
type HandshakeError struct {
	Status int
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("client: websocket handshake refused with HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// readLoop reads frames until the connection ends, then reports the close.
func (c *conn) readLoop(br *bufio.Reader) {
	s := c.s
	if br == nil {
		br = bufio.NewReaderSize(c.nc, 4096)
	}
	ev := CloseEvent{Code: CloseAbnormal}
	max := s.opts.MaxMessageSize
	var msg []byte
	var msgOp ws.OpCode
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			break
		}
		if h.Masked || h.Rsv != 0 || (h.OpCode.IsControl() && (h.Length > 125 || !h.Fin)) {
			c.fail(CloseProtocol, "protocol error")
			ev = CloseEvent{Code: CloseProtocol, Reason: "protocol error"}
			break
		}
		if h.Length > max || int64(len(msg))+h.Length > max {
			c.fail(CloseTooBig, "message too big")
			ev = CloseEvent{Code: CloseTooBig, Reason: "message too big"}
			break
		}
		payload, err := readN(br, h.Length)
		if err != nil {
			break
		}
		switch h.OpCode {
		case ws.OpPing:
			c.write(clientFrame(ws.OpPong, payload))
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			ev = CloseEvent{Code: CloseNoStatus, WasClean: true}
			if len(payload) >= 2 {
				ev.Code = int(binary.BigEndian.Uint16(payload))
				ev.Reason = string(payload[2:])
			}
			// Echo the code, as RFC 6455 asks; a no-op after our own close.
			echo := ev.Code
			if echo == CloseNoStatus {
				echo = CloseNormal
			}
			c.sendClose(echo, "")
			c.waitCloseSent()
			goto done
		case ws.OpContinuation:
			if msg == nil {
				c.fail(CloseProtocol, "unexpected continuation")
				ev = CloseEvent{Code: CloseProtocol}
				goto done
			}
			msg = append(msg, payload...)
		case ws.OpText, ws.OpBinary:
			if msg != nil {
				c.fail(CloseProtocol, "expected continuation")
				ev = CloseEvent{Code: CloseProtocol}
				goto done
			}
			msg, msgOp = payload, h.OpCode
		default:
			c.fail(CloseProtocol, "unknown opcode")
			ev = CloseEvent{Code: CloseProtocol}
			goto done
		}
		if !h.Fin {
			if msg == nil {
				msg = []byte{}
			}
			continue
		}
		data, op := msg, msgOp
		msg = nil
		s.handleFrame(c, data, op == ws.OpBinary)
	}
done:
	c.nc.Close()
	s.mu.Lock()
	s.connClosed(c, ev, nil)
	s.mu.Unlock()
}

// readN reads n bytes, growing the buffer as bytes arrive rather than
// trusting the declared length up front.
func readN(r io.Reader, n int64) ([]byte, error) {
	const chunk = 64 << 10
	if n <= chunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, chunk)
	for int64(len(b)) < n {
		k := min(n-int64(len(b)), chunk)
		if int64(cap(b)-len(b)) < k {
			b = append(b, make([]byte, k)...)[:len(b)]
		}
		m, err := io.ReadFull(r, b[len(b):int64(len(b))+k])
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// fail sends a close frame for a protocol problem found while reading and
// waits briefly for it to be written; the caller then drops the connection.
func (c *conn) fail(code int, reason string) {
	c.sendClose(code, reason)
	c.waitCloseSent()
}

// close starts closing the connection from the client side. Call with the
// socket's lock held.
func (c *conn) close(code int, reason string) {
	c.closing = true
	switch c.state {
	case connConnecting:
		c.state = connClosing
		c.cancelDial()
	case connOpen:
		c.state = connClosing
		if c.lp != nil {
			c.lp.close(CloseEvent{Code: code, Reason: reason, WasClean: true})
			return
		}
		c.sendClose(code, reason)
		// Wait a moment for the server's close frame, then give up on it.
		c.nc.SetReadDeadline(time.Now().Add(closeWaitPeriod))
	}
}

// send queues one encoded message (JSON text, or bytes when binary) on the
// connection's transport. It never blocks on the network.
func (c *conn) send(data []byte, binary bool) {
	if c.lp != nil {
		c.lp.send(data, binary)
		return
	}
	op := opText
	if binary {
		op = opBinary
	}
	c.write(clientFrame(op, data))
}

// sendClose queues a close frame, after which nothing more is written.
func (c *conn) sendClose(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	c.queue = append(c.queue, clientFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason)))
	c.wclosed = true
	c.closeSent = make(chan struct{})
	c.startWriterLocked()
}

// waitCloseSent waits up to closeWaitPeriod for the close frame to go out.
func (c *conn) waitCloseSent() {
	c.wmu.Lock()
	ch := c.closeSent
	c.wmu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(closeWaitPeriod)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// write queues one encoded frame. It never blocks on the network.
func (c *conn) write(frame []byte) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return false
	}
	c.queue = append(c.queue, frame)
	c.startWriterLocked()
	return true
}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.s.wg.Add(1)
		go c.writeLoop()
	}
}

// writeLoop writes everything queued, several frames per system call, and
// exits when the queue is empty; write queues a new one as needed.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	for {
		c.wmu.Lock()
		q := c.queue
		if len(q) == 0 {
			c.writing = false
			if c.wclosed && c.closeSent != nil {
				closeOnce(c.closeSent)
			}
			c.wmu.Unlock()
			return
		}
		c.queue = nil
		c.wmu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		bufs := net.Buffers(q)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			c.nc.Close()
			c.wmu.Lock()
			c.wclosed = true
			c.queue = nil
			c.writing = false
			if c.closeSent != nil {
				closeOnce(c.closeSent)
			}
			c.wmu.Unlock()
			return
		}
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// clientFrame builds a final, masked frame, as clients must send them.
func clientFrame(op ws.OpCode, payload []byte) []byte {
	n := len(payload)
	hlen := 2 + 4
	switch {
	case n > 0xffff:
		hlen += 8
	case n > 125:
		hlen += 2
	}
	b := make([]byte, hlen+n)
	b[0] = 0x80 | byte(op)
	switch {
	case n > 0xffff:
		b[1] = 0x80 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	case n > 125:
		b[1] = 0x80 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 0x80 | byte(n)
	}
	mask := ws.NewMask()
	copy(b[hlen-4:], mask[:])
	copy(b[hlen:], payload)
	ws.Cipher(b[hlen:], mask, 0)
	return b
}

// authProtocols returns the subprotocols phoenix.js offers to carry an auth
// token: "phoenix" and "base64url.bearer.phx." + base64 (standard alphabet,
// no padding, despite the name) of the token.
func authProtocols(token string) []string {
	return []string{"phoenix", "base64url.bearer.phx." + base64.RawStdEncoding.EncodeToString([]byte(token))}
}
