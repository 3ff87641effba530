package plume

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/plumehq/plume/telemetry"
	"github.com/plumehq/plume/wire"
)

// The WebSocket transport is built on gobwas/ws's handshake and framing
// primitives rather than a message-level API, for two measured reasons
// (docs/benchmarks.md): it lets the writer put every queued frame into one
// write system call, and it lets an idle connection hold no write buffer and
// only a small read buffer.

const readBufferSize = 512

// coalesceWrites makes the writer put every queued frame into one write;
// benchmarks turn it off to measure what it saves.
var coalesceWrites = true

var upgrader = ws.HTTPUpgrader{
	Protocol: func(p string) bool { return p == "phoenix" },
}

func (e *Endpoint) serveWebSocket(w http.ResponseWriter, r *http.Request, s *Socket) {
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	if e.draining.Load() {
		e.refused(TransportWebSocket, "draining", nil, nil)
		http.Error(w, "", http.StatusServiceUnavailable)
		return
	}
	token, _ := authTokenFromProtocols(r.Header)
	c, err := e.connect(r, s, TransportWebSocket, token)
	if err != nil {
		var cr *connectRefusal
		if s.RefuseWithClose && errors.As(err, &cr) {
			e.refuseWithClose(w, r, s, cr.err)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		return
	}
	nc, rw, _, err := upgrader.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		// Connect accepted it and SocketConnected went out: report its end,
		// or connection gauges built on the events drift up.
		e.emit(&telemetry.Event{Kind: telemetry.SocketClosed, Transport: TransportWebSocket, SocketID: c.ID})
		return
	}
	t := &wsTransport{nc: nc, conn: c, maxQueue: s.maxQueueBytes(), writeTimeout: s.writeTimeout()}
	// Bytes the client sent right behind the handshake sit in the server's
	// buffer; keep them, then drop that 4 KiB buffer.
	var pre []byte
	if n := rw.Reader.Buffered(); n > 0 {
		pre, _ = rw.Reader.Peek(n)
		pre = append([]byte(nil), pre...)
	}
	c.transport = t
	c.start()
	// Read on a fresh goroutine and let the handler return: the HTTP
	// server's per-request state is then freed (about 4 KB per connection).
	go t.readLoop(pre, s)
}

// wsTransport is one WebSocket connection: a reader goroutine, and a bounded
// outbound queue drained by a writer goroutine that exists only while there
// is something to write.
type wsTransport struct {
	nc           net.Conn
	conn         *Conn
	maxQueue     int
	writeTimeout time.Duration

	mu        sync.Mutex
	queue     []outFrame
	spare     []outFrame
	queued    int
	writing   bool
	closed    bool
	closeAt   time.Time
	overflow  bool
	highWater int
}

const highWaterStep = 64 << 10

type outFrame struct {
	data []byte
	op   ws.OpCode
}

func (t *wsTransport) Name() string { return TransportWebSocket }

func (t *wsTransport) Send(f wire.Frame) bool {
	op := ws.OpText
	if f.Binary {
		op = ws.OpBinary
	}
	return t.enqueue(outFrame{f.Data, op})
}

func (t *wsTransport) enqueue(f outFrame) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	if t.queued+len(f.data) > t.maxQueue && t.queued > 0 {
		t.overflow = true
		queued := t.queued
		t.mu.Unlock()
		t.conn.endpoint.emit(&telemetry.Event{Kind: telemetry.SlowClient, Transport: TransportWebSocket, SocketID: t.conn.id, QueueBytes: queued})
		t.closeWith(CloseTryAgainLater, "slow client", true)
		return false
	}
	t.queue = append(t.queue, f)
	t.queued += len(f.data)
	if t.queued > t.highWater && t.queued >= highWaterStep {
		// Report each doubling past 64 KiB: rare, and it shows a client
		// falling behind before it is dropped.
		for t.highWater < t.queued {
			t.highWater = max(2*t.highWater, highWaterStep)
		}
		queued := t.queued
		defer t.conn.endpoint.emit(&telemetry.Event{Kind: telemetry.QueueHighWater, Transport: TransportWebSocket, SocketID: t.conn.id, QueueBytes: queued})
	}
	t.startWriterLocked()
	t.mu.Unlock()
	return true
}

func (t *wsTransport) startWriterLocked() {
	if !t.writing {
		t.writing = true
		go t.writeLoop()
	}
}

func (t *wsTransport) Close(code int, reason string) { t.closeWith(code, reason, false) }

// closeWith queues a close frame behind what is queued (or instead of it,
// when dropping a slow client) and gives the client a moment to answer.
func (t *wsTransport) closeWith(code int, reason string, drop bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.closeAt = time.Now()
	t.conn.noteClose(code)
	if drop {
		t.queue, t.queued = nil, 0
		// Wake a writer stuck on a client that does not read.
		t.nc.SetWriteDeadline(time.Now().Add(time.Second))
	}
	body := ws.NewCloseFrameBody(ws.StatusCode(code), reason)
	t.queue = append(t.queue, outFrame{body, ws.OpClose})
	t.startWriterLocked()
	t.mu.Unlock()
	// The reader waits at most 2s for the client's close frame.
	t.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

func (t *wsTransport) writeLoop() {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(t.nc)
	defer func() {
		bw.Reset(nil)
		writerPool.Put(bw)
	}()
	var hdr [10]byte
	for {
		t.mu.Lock()
		batch := t.queue
		if len(batch) == 0 {
			t.writing = false
			t.mu.Unlock()
			return
		}
		t.queue, t.spare = t.spare[:0], nil
		t.queued = 0
		t.mu.Unlock()

		t.nc.SetWriteDeadline(time.Now().Add(t.writeTimeout))
		var err error
		sentClose := false
		for i, f := range batch {
			n := putHeader(hdr[:], f.op, len(f.data))
			bw.Write(hdr[:n])
			if _, err = bw.Write(f.data); err != nil {
				break
			}
			if !coalesceWrites {
				if err = bw.Flush(); err != nil {
					break
				}
			}
			if f.op == ws.OpClose {
				sentClose = true
			}
			batch[i] = outFrame{}
		}
		if err == nil {
			err = bw.Flush()
		}
		t.mu.Lock()
		if t.spare == nil {
			t.spare = batch[:0]
		}
		t.mu.Unlock()
		if err != nil || sentClose {
			if err != nil {
				t.nc.Close()
			}
			t.mu.Lock()
			t.closed = true
			t.queue, t.queued = nil, 0
			t.writing = false
			t.mu.Unlock()
			return
		}
	}
}

// putHeader writes an unmasked final-frame header and returns its length.
func putHeader(b []byte, op ws.OpCode, n int) int {
	b[0] = 0x80 | byte(op)
	switch {
	case n < 126:
		b[1] = byte(n)
		return 2
	case n <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return 10
	}
}

var errFrame = errors.New("websocket protocol error")

// readLoop reads frames until the connection ends, then tears it down.
func (t *wsTransport) readLoop(pre []byte, s *Socket) {
	var src io.Reader = t.nc
	if len(pre) > 0 {
		src = io.MultiReader(&preReader{b: pre}, t.nc)
	}
	br := bufio.NewReaderSize(src, readBufferSize)
	idle := s.idleTimeout()
	maxSize := s.maxFrameSize()
	var msgOp ws.OpCode
	var msg []byte
	for {
		// Under the lock, so as not to undo the 2s close wait that
		// closeWith sets from another goroutine.
		t.mu.Lock()
		closing := t.closed
		if !closing {
			t.nc.SetReadDeadline(time.Now().Add(idle))
		}
		t.mu.Unlock()
		h, err := readHeader(br)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && !closing {
				t.Close(CloseProtocolError, "idle timeout")
				continue
			}
			break
		}
		if h.Rsv != 0 || !h.Masked {
			t.Close(CloseProtocolError, "protocol error")
			continue
		}
		if h.OpCode.IsControl() && (h.Length > 125 || !h.Fin) {
			t.Close(CloseProtocolError, "protocol error")
			continue
		}
		if h.Length > maxSize || int64(len(msg))+h.Length > maxSize {
			t.Close(CloseTooBig, "frame too large")
			// Skip the payload instead of closing at once, so that the
			// close frame reaches the client (within the 2s close wait).
			if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
				break
			}
			msg = nil
			continue
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(br, payload); err != nil {
			break
		}
		ws.Cipher(payload, h.Mask, 0)
		switch h.OpCode {
		case ws.OpPing:
			t.enqueue(outFrame{payload, ws.OpPong})
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			t.answerClose(payload)
			continue
		case ws.OpContinuation:
			if msg == nil {
				t.Close(CloseProtocolError, "unexpected continuation")
				continue
			}
			msg = append(msg, payload...)
		case ws.OpText, ws.OpBinary:
			if msg != nil {
				t.Close(CloseProtocolError, "expected continuation")
				continue
			}
			msgOp, msg = h.OpCode, payload
		default:
			t.Close(CloseProtocolError, "unknown opcode")
			continue
		}
		if !h.Fin {
			if msg == nil {
				msg = []byte{}
			}
			continue
		}
		data, op := msg, msgOp
		msg = nil
		if closing {
			continue
		}
		if op == ws.OpText && !utf8.Valid(data) {
			t.Close(CloseInvalidData, "invalid utf-8")
			continue
		}
		if err := t.conn.HandleFrame(data, op == ws.OpBinary); err != nil {
			t.conn.endpoint.log.Error("closing connection: malformed frame", "id", t.conn.id, "err", err)
			t.Close(CloseInternalError, "malformed frame")
		}
	}
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.nc.Close()
	t.conn.Terminate()
}

// answerClose echoes the client's close code, as RFC 6455 asks.
func (t *wsTransport) answerClose(payload []byte) {
	code := CloseNormal
	if len(payload) >= 2 {
		code = int(binary.BigEndian.Uint16(payload))
	}
	if code == 1005 || code == 1006 || code == 1015 {
		code = CloseNormal
	}
	t.Close(code, "")
}

type preReader struct{ b []byte }

func (p *preReader) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.b)
	p.b = p.b[n:]
	return n, nil
}

// readHeader reads a frame header without allocating.
func readHeader(br *bufio.Reader) (h ws.Header, err error) {
	b0, err := br.ReadByte()
	if err != nil {
		return h, err
	}
	b1, err := br.ReadByte()
	if err != nil {
		return h, err
	}
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 & 0x70) >> 4
	h.OpCode = ws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	var ext [8]byte
	switch l := b1 & 0x7f; l {
	case 126:
		if _, err = io.ReadFull(br, ext[:2]); err != nil {
			return h, err
		}
		h.Length = int64(binary.BigEndian.Uint16(ext[:2]))
	case 127:
		if _, err = io.ReadFull(br, ext[:8]); err != nil {
			return h, err
		}
		v := binary.BigEndian.Uint64(ext[:8])
		if v>>63 != 0 {
			return h, errFrame
		}
		h.Length = int64(v)
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if _, err = io.ReadFull(br, h.Mask[:]); err != nil {
			return h, err
		}
	}
	return h, nil
}
