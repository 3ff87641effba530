package plume

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
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
	// closeSent: our close frame is on the wire; peerClosed: the client's
	// arrived. With both, the close handshake is over and TCP is closed.
	closeSent  bool
	peerClosed bool
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

// A writer yields the processor up to maxWriterYields times before a write,
// while its queue keeps growing and holds under yieldBelowBytes. Without
// it, a broadcast to 10,000 connections starts 10,000 writers that outnumber
// the broadcasting goroutine in the run queue: each writer ran as soon as its
// first frame arrived, writes carried ~2.5 frames, and the write system calls
// (~30 µs each on loopback) made 10,000-subscriber fan-out cost 8–11 CPU
// seconds per million deliveries against ~1 at 1,000 subscribers. A yield
// costs well under a microsecond when nothing else is runnable, so an idle
// server's latency is unchanged (docs/benchmarks.md).
const (
	maxWriterYields = 4
	yieldBelowBytes = 2048
)

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

func (t *wsTransport) writeLoop() {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(t.nc)
	defer func() {
		bw.Reset(nil)
		writerPool.Put(bw)
	}()
	var hdr [10]byte
	yields, seen := 0, 0
	for {
		t.mu.Lock()
		batch := t.queue
		if len(batch) == 0 {
			t.writing = false
			t.mu.Unlock()
			return
		}
		if coalesceWrites && yields < maxWriterYields && t.queued < yieldBelowBytes && len(batch) > seen {
			// Frames are still arriving (a broadcast is fanning out to many
			// connections): let the broadcaster run before writing, so that
			// this write carries its next frames too. See maxWriterYields.
			seen = len(batch)
			yields++
			t.mu.Unlock()
			runtime.Gosched()
			continue
		}
		yields, seen = 0, 0
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
			t.mu.Lock()
			t.closed = true
			t.closeSent = sentClose
			t.queue, t.queued = nil, 0
			t.writing = false
			done := err != nil || t.peerClosed
			t.mu.Unlock()
			if done {
				// Both close frames have crossed (or writing failed): the
				// server closes TCP first, as RFC 6455 §7.1.1 asks.
				t.nc.Close()
			}
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
	r := &frameReader{t: t, idle: s.idleTimeout(), maxSize: s.maxFrameSize()}
	r.src.nc = t.nc
	r.src.prefix = pre
	r.loop()
}

func (r *frameReader) loop() {
	t := r.t
	for r.next() {
		if r.br == nil && r.worked {
			// Handling frames (JSON, joins, the user's Join) grows this
			// goroutine's stack, and an idle reader keeps a grown stack
			// at 4 KB or more. Go on waiting on a fresh goroutine, whose
			// stack starts small: it costs one goroutine start per burst
			// of client frames and saves ~2 KB per idle connection.
			r.worked = false
			go r.loop()
			return
		}
	}
	if r.br != nil {
		r.releaseBuffer()
	}
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.nc.Close()
	t.conn.Terminate()
}

// frameReader holds a connection's read state. An idle connection holds no
// read buffer: the reader waits for one byte straight from the socket, and
// only then takes a buffer from a pool, returning it once everything that
// arrived is handled. The waiting happens in next, whose stack frame is
// small; handling happens in handle, whose larger frame is gone while the
// connection idles, so the goroutine's stack can shrink to its minimum.
type frameReader struct {
	t       *wsTransport
	src     prefixReader
	br      *bufio.Reader
	idle    time.Duration
	maxSize int64
	msgOp   ws.OpCode
	msg     []byte
	one     [1]byte
	worked  bool // a data frame was handled since the last wait
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// prefixReader serves bytes already read, then the socket.
type prefixReader struct {
	prefix []byte
	nc     net.Conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.nc.Read(b)
}

// next reads and handles one frame; false ends the connection.
func (r *frameReader) next() bool {
	closing := r.t.armReadDeadline(r.idle)
	if r.br == nil {
		if len(r.src.prefix) == 0 {
			if _, err := r.t.nc.Read(r.one[:]); err != nil {
				return r.readError(err, closing)
			}
			r.src.prefix = r.one[:]
		}
		r.br = readerPool.Get().(*bufio.Reader)
		r.br.Reset(&r.src)
	}
	h, err := readHeader(r.br)
	if err != nil {
		return r.readError(err, closing)
	}
	ok := r.handle(h, closing)
	if ok && r.br.Buffered() == 0 && len(r.src.prefix) == 0 {
		r.releaseBuffer()
	}
	return ok
}

func (r *frameReader) releaseBuffer() {
	r.br.Reset(nil)
	readerPool.Put(r.br)
	r.br = nil
}

// armReadDeadline sets the idle deadline unless the connection is closing,
// under the lock so as not to undo the 2s close wait that closeWith sets
// from another goroutine. It reports whether the connection is closing.
func (t *wsTransport) armReadDeadline(idle time.Duration) (closing bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.nc.SetReadDeadline(time.Now().Add(idle))
	}
	return t.closed
}

func (r *frameReader) readError(err error, closing bool) bool {
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !closing {
		r.t.Close(CloseProtocolError, "idle timeout")
		return true
	}
	return false
}

// handle reads the payload of the frame whose header is h and acts on it.
//
//go:noinline
func (r *frameReader) handle(h ws.Header, closing bool) bool {
	t := r.t
	if h.Rsv != 0 || !h.Masked {
		t.Close(CloseProtocolError, "protocol error")
		return true
	}
	if h.OpCode.IsControl() && (h.Length > 125 || !h.Fin) {
		t.Close(CloseProtocolError, "protocol error")
		return true
	}
	if h.Length > r.maxSize || int64(len(r.msg))+h.Length > r.maxSize {
		t.Close(CloseTooBig, "frame too large")
		// Skip the payload instead of closing at once, so that the
		// close frame reaches the client (within the 2s close wait).
		if _, err := io.CopyN(io.Discard, r.br, h.Length); err != nil {
			return false
		}
		r.msg = nil
		return true
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		return false
	}
	ws.Cipher(payload, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		t.enqueue(outFrame{payload, ws.OpPong})
		return true
	case ws.OpPong:
		return true
	case ws.OpClose:
		return !t.answerClose(payload)
	case ws.OpContinuation:
		if r.msg == nil {
			t.Close(CloseProtocolError, "unexpected continuation")
			return true
		}
		r.msg = append(r.msg, payload...)
	case ws.OpText, ws.OpBinary:
		if r.msg != nil {
			t.Close(CloseProtocolError, "expected continuation")
			return true
		}
		r.msgOp, r.msg = h.OpCode, payload
	default:
		t.Close(CloseProtocolError, "unknown opcode")
		return true
	}
	if !h.Fin {
		if r.msg == nil {
			r.msg = []byte{}
		}
		return true
	}
	data, op := r.msg, r.msgOp
	r.msg = nil
	if closing {
		return true
	}
	if op == ws.OpText && !utf8.Valid(data) {
		t.Close(CloseInvalidData, "invalid utf-8")
		return true
	}
	r.worked = true
	if err := t.conn.HandleFrame(data, op == ws.OpBinary); err != nil {
		t.conn.endpoint.log.Error("closing connection: malformed frame", "id", t.conn.id, "err", err)
		t.Close(CloseInternalError, "malformed frame")
	}
	return true
}

// answerClose echoes the client's close code, as RFC 6455 asks.
func (t *wsTransport) answerClose(payload []byte) (done bool) {
	t.mu.Lock()
	t.peerClosed = true
	done = t.closeSent
	t.mu.Unlock()
	if done {
		// The client answered our close frame: the handshake is over.
		return true
	}
	code := CloseNormal
	if len(payload) >= 2 {
		code = int(binary.BigEndian.Uint16(payload))
	}
	if code == 1005 || code == 1006 || code == 1015 {
		code = CloseNormal
	}
	t.Close(code, "")
	return false
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
