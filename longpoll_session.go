package plume

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/plumehq/plume/telemetry"
	"github.com/plumehq/plume/wire"
)

// lpSession is one long-poll client: the Transport of its Conn. Frames for
// the client wait in a buffer bounded by Socket.MaxQueueBytes until a poll
// takes them. An idle session holds no goroutine, only one timer that ends
// it 1.5 × the window after its last poll; a waiting poll is its HTTP
// handler's goroutine.
type lpSession struct {
	lp       *longPoll
	id       lpID
	conn     *Conn
	socket   *Socket
	window   time.Duration
	maxQueue int
	// inbound is held while a POST's frames are handled, so that a session
	// handles its frames one at a time and in order, as a WebSocket's reader
	// does; teardown takes it to wait for the frame in flight.
	inbound chan struct{}

	mu           sync.Mutex
	buf          [][]byte
	queued       int
	highWater    int
	notify       chan struct{} // closed when frames arrive or the session closes
	polls        int           // polls in progress
	lastPoll     time.Time
	timer        *time.Timer
	closed       bool // no more frames in or out; Terminate is under way
	gone         bool // removed from the registry
	token        string
	tokenExp     int64
	warnedBinary bool
}

var (
	errLPGone      = errors.New("plume: long-poll session closed")
	errLPTooBig    = errors.New("plume: long-poll frame too large")
	errLPMalformed = errors.New("plume: malformed long-poll frame")
)

// Name implements Transport.
func (s *lpSession) Name() string { return TransportLongPoll }

func (s *lpSession) idle() time.Duration { return s.window * 3 / 2 }

// tokenLocked returns the session's token, re-signed once half its life has
// passed; every poll reply carries it and phoenix.js keeps the latest.
func (s *lpSession) tokenLocked() string {
	ms := s.lp.now().UnixMilli()
	maxAge := s.lp.tokenMaxAge.Milliseconds()
	if s.token == "" || s.tokenExp-ms < maxAge/2 {
		s.tokenExp = ms + maxAge
		s.token = s.lp.sign(lpToken{node: s.lp.node(), id: s.id, expires: s.tokenExp})
	}
	return s.token
}

func (s *lpSession) wakeLocked() {
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}

func (s *lpSession) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Send implements Transport: it buffers a text frame for the next poll.
// Binary frames are dropped (see the long-poll notes in longpoll.go). A
// buffer that would pass MaxQueueBytes closes the session as a slow client.
func (s *lpSession) Send(f wire.Frame) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if f.Binary {
		warn := !s.warnedBinary
		s.warnedBinary = true
		s.mu.Unlock()
		if warn {
			s.lp.e.log.Warn("dropping binary frames: long-poll carries text frames only", "id", s.conn.id, "bytes", len(f.Data))
		}
		return true
	}
	if s.queued+len(f.Data) > s.maxQueue && s.queued > 0 {
		queued := s.queued
		s.mu.Unlock()
		s.lp.e.emit(&telemetry.Event{Kind: telemetry.SlowClient, Transport: TransportLongPoll, SocketID: s.conn.id, QueueBytes: queued})
		s.closeWith(CloseTryAgainLater, "slow client", true)
		return false
	}
	s.buf = append(s.buf, f.Data)
	s.queued += len(f.Data)
	if s.queued > s.highWater && s.queued >= highWaterStep {
		// As for a WebSocket: report each doubling past 64 KiB.
		for s.highWater < s.queued {
			s.highWater = max(2*s.highWater, highWaterStep)
		}
		queued := s.queued
		defer s.lp.e.emit(&telemetry.Event{Kind: telemetry.QueueHighWater, Transport: TransportLongPoll, SocketID: s.conn.id, QueueBytes: queued})
	}
	s.wakeLocked()
	s.mu.Unlock()
	return true
}

// Close implements Transport. The code only shows in the logs: a long-poll
// client learns of the close from its next poll, answered {"status":410}
// once the frames buffered before the close are delivered.
func (s *lpSession) Close(code int, reason string) { s.closeWith(code, reason, false) }

// closeWith closes the session without blocking (it is called from
// broadcasters and from Send): drop discards the buffered frames, and the
// channels end on a goroutine that first waits for the frame in flight.
func (s *lpSession) closeWith(code int, reason string, drop bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.conn.noteClose(code)
	if drop {
		s.buf, s.queued = nil, 0
	}
	empty := len(s.buf) == 0
	s.wakeLocked()
	s.mu.Unlock()
	s.lp.e.log.Debug("long-poll session closed", "id", s.conn.id, "code", code, "reason", reason)
	if empty {
		s.lp.remove(s)
	}
	go s.teardown()
}

func (s *lpSession) teardown() {
	s.inbound <- struct{}{}
	<-s.inbound
	s.conn.Terminate()
}

// expire runs on the session's timer: it ends a session that has had no
// poll for 1.5 × the window (Phoenix's {:shutdown, :inactive}), and forgets
// a closed one whose last frames were never collected.
func (s *lpSession) expire() {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	if s.polls > 0 {
		s.timer.Reset(s.idle())
		s.mu.Unlock()
		return
	}
	if left := s.idle() - time.Since(s.lastPoll); left > 0 {
		s.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.lp.e.log.Info("long-poll session expired: no poll", "id", s.conn.id, "after", s.idle())
		s.closeWith(CloseGoingAway, "inactive", true)
	}
	s.lp.remove(s)
}

// poll answers a GET, local or forwarded from another node, with the JSON
// body to reply: buffered frames at once, else the first to arrive within
// wait (the window when 0 or longer), else 204; nil when ctx ends first (the
// client went away). maxBytes > 0 bounds the frames taken by one reply (at
// least one is taken), as a forwarded reply must fit a PubSub message; the
// rest wait for the next poll.
func (s *lpSession) poll(ctx context.Context, wait time.Duration, maxBytes int) []byte {
	if wait <= 0 || wait > s.window {
		wait = s.window
	}
	s.mu.Lock()
	s.polls++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.polls--
		s.lastPoll = time.Now()
		s.mu.Unlock()
	}()
	var timer *time.Timer
	timedOut := false
	for {
		s.mu.Lock()
		if len(s.buf) > 0 {
			msgs, left := s.buf, s.queued
			s.buf, s.queued = nil, 0
			if maxBytes > 0 {
				n, size := 1, len(msgs[0])
				for n < len(msgs) && size+len(msgs[n]) <= maxBytes {
					size += len(msgs[n])
					n++
				}
				if n < len(msgs) {
					s.buf, s.queued = msgs[n:], left-size
					msgs = msgs[:n:n]
				}
			}
			token := s.tokenLocked()
			closed := s.closed && len(s.buf) == 0
			s.mu.Unlock()
			if closed {
				s.lp.remove(s)
			}
			return lpMessagesBody(200, token, msgs)
		}
		if s.closed {
			s.mu.Unlock()
			s.lp.remove(s)
			return lpStatusBody(410)
		}
		if timedOut {
			token := s.tokenLocked()
			s.mu.Unlock()
			return lpMessagesBody(204, token, nil)
		}
		if s.notify == nil {
			s.notify = make(chan struct{})
		}
		wake := s.notify
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			timedOut = true
		case <-ctx.Done():
			return nil
		}
	}
}

// publish hands a POST's frames to the session in order and returns the
// status to answer (0: none, the client is gone). Each frame must be handled
// within the window; the frames are handled on a goroutine of their own so
// that a slow one (a long Join) can be answered 408 while it finishes, after
// which the rest are dropped, as Phoenix does.
func (s *lpSession) publish(ctx context.Context, frames [][]byte, ndjson bool) int {
	timer := time.NewTimer(s.window)
	defer timer.Stop()
	select {
	case s.inbound <- struct{}{}:
	case <-timer.C:
		return 408
	case <-ctx.Done():
		return 0
	}
	if s.isClosed() {
		<-s.inbound
		return 410
	}
	if len(frames) == 0 {
		<-s.inbound
		return 200
	}
	acks := make(chan error, len(frames))
	stop := new(atomic.Bool)
	go s.handleFrames(frames, ndjson, acks, stop)
	for range frames {
		select {
		case err := <-acks:
			if err != nil {
				stop.Store(true)
				return s.fail(err)
			}
			timer.Reset(s.window)
		case <-timer.C:
			stop.Store(true)
			return 408
		}
	}
	return 200
}

// handleFrames runs with inbound held and releases it.
func (s *lpSession) handleFrames(frames [][]byte, ndjson bool, acks chan<- error, stop *atomic.Bool) {
	defer func() { <-s.inbound }()
	for _, f := range frames {
		if stop.Load() {
			return
		}
		if s.isClosed() {
			acks <- errLPGone
			return
		}
		err := s.handleFrame(f, ndjson)
		acks <- err
		if err != nil {
			return
		}
	}
}

func (s *lpSession) handleFrame(line []byte, ndjson bool) error {
	maxSize := s.socket.maxFrameSize()
	data, binary := line, false
	if ndjson && line[0] != '[' {
		n := base64.StdEncoding.DecodedLen(len(line))
		if int64(n)-2 > maxSize {
			return errLPTooBig
		}
		b := make([]byte, n)
		n, err := base64.StdEncoding.Decode(b, line)
		if err != nil {
			return fmt.Errorf("%w: base64: %v", errLPMalformed, err)
		}
		data, binary = b[:n], true
	} else if !utf8.Valid(data) {
		return fmt.Errorf("%w: text frame is not UTF-8", errLPMalformed)
	}
	if int64(len(data)) > maxSize {
		return errLPTooBig
	}
	if err := s.conn.HandleFrame(data, binary); err != nil {
		return fmt.Errorf("%w: %v", errLPMalformed, err)
	}
	return nil
}

// fail ends the session for a frame it could not take, as a WebSocket
// closes: 1009 for a frame too large (answered 413), 1011 for a malformed
// one (answered 408, as Phoenix does).
func (s *lpSession) fail(err error) int {
	switch {
	case errors.Is(err, errLPGone):
		return 410
	case errors.Is(err, errLPTooBig):
		s.lp.e.log.Error("closing long-poll session: frame too large", "id", s.conn.id, "max", s.socket.maxFrameSize())
		s.closeWith(CloseTooBig, "frame too large", false)
		return 413
	default:
		s.lp.e.log.Error("closing connection: malformed frame", "id", s.conn.id, "transport", TransportLongPoll, "err", err)
		s.closeWith(CloseInternalError, "malformed frame", false)
		return 408
	}
}
