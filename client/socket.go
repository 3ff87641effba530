package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumehq/plume/wire"
)

// Options configures a [Socket]. The zero value, like a nil *Options, gives
// phoenix.js's defaults.
type Options struct {
	// URL, when set, returns the endpoint for each connection attempt and
	// replaces the one given to NewSocket, for example to move to another
	// node after a drain.
	URL func() string
	// Params returns the connect params, sent in the query string. It is
	// called on every connection attempt, so it can return a fresh token.
	// Nested maps are sent as a[b]=c, as phoenix.js does.
	Params func() map[string]any
	// AuthToken returns a token sent in the Sec-WebSocket-Protocol header
	// (phoenix.js's authToken; the server sees it as ConnectInfo.AuthToken).
	// It is called on every connection attempt.
	AuthToken func() string

	// Serializer is wire.V2 ("2.0.0", the default) or wire.V1 ("1.0.0",
	// which has no binary frames).
	Serializer wire.Serializer
	// Transport is TransportWebSocket (the default) or TransportLongPoll.
	Transport string
	// LongPollTimeout bounds one long-poll request (phoenix.js's
	// longpollerTimeout); default 20s, twice the server's poll window.
	LongPollTimeout time.Duration

	// Timeout bounds every join and push: without a reply by then, its
	// result is "timeout". Default 10s.
	Timeout time.Duration
	// HeartbeatInterval is the time between heartbeats, and also how long
	// the client waits for a heartbeat reply before it closes the connection
	// and reconnects. Default 30s; a negative value disables heartbeats.
	HeartbeatInterval time.Duration
	// ReconnectAfter returns the delay before reconnect attempt number tries
	// (from 1); default [DefaultReconnectAfter].
	ReconnectAfter func(tries int) time.Duration
	// RejoinAfter returns the delay before channel rejoin attempt number
	// tries (from 1); default [DefaultRejoinAfter].
	RejoinAfter func(tries int) time.Duration

	// Header holds extra handshake headers, such as Origin.
	Header http.Header
	// NetDial dials the TCP connection; nil uses a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for wss:// endpoints.
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect and the WebSocket handshake;
	// default Timeout.
	DialTimeout time.Duration
	// WriteTimeout bounds one write to the network; default 10s. A write
	// that takes longer drops the connection.
	WriteTimeout time.Duration
	// MaxMessageSize is the largest message accepted from the server, in
	// bytes; a larger one closes the connection with 1009. Default 64 MiB.
	MaxMessageSize int64

	// Logger receives debug logs (dropped messages and the like); nil
	// discards them.
	Logger *slog.Logger
}

// Socket is a connection to a Phoenix (or Plume) socket endpoint, with the
// semantics of phoenix.js's Socket: it reconnects with backoff after any
// close it did not ask for, heartbeats, buffers sends while disconnected and
// flushes them in order on open, and multiplexes [Channel]s.
//
// # Callbacks
//
// Channel handlers ([Channel.On]) and socket callbacks ([Socket.OnOpen] and
// the like) run one at a time, in the order the events happened, on one
// goroutine per Socket that exists only while callbacks are pending. A
// callback that blocks delays all later ones of its socket, but never the
// socket itself: heartbeats, replies and reconnects go on. Callbacks may
// call any method, including blocking ones such as [Channel.Push]. The
// results of Join, Push and Leave are returned to their callers directly,
// not through that goroutine.
//
// Payload slices passed to callbacks are shared between the callbacks of one
// message and must not be modified.
type Socket struct {
	endpoint string
	opts     Options
	ser      wire.Serializer
	log      *slog.Logger

	mu               sync.Mutex
	closed           bool
	conn             *conn
	closeWasClean    bool
	ref              uint64
	sendBuffer       []buffered
	channels         []*Channel
	reconnect        backoff
	hbTimer          *alarm
	hbTimeout        *alarm
	pendingHeartbeat string
	callbacks        []callback
	waiters          map[chan error]struct{}
	leaves           map[string]*leaveWait

	disp     dispatcher
	wg       sync.WaitGroup
	lpClient *http.Client
}

type buffered struct {
	m  outMsg
	ch *Channel
}

type callbackKind int

const (
	cbOpen callbackKind = iota
	cbClose
	cbError
	cbMessage
)

type callback struct {
	ref     Ref
	kind    callbackKind
	open    func()
	close   func(CloseEvent)
	err     func(error)
	message func(Message)
}

// leaveWait waits for the server's reply to a leave.
type leaveWait struct {
	done  chan struct{}
	timer *alarm
}

// NewSocket returns a Socket for a Phoenix socket endpoint such as
// "ws://localhost:4000/socket" (http:// and https:// work too); the client
// connects to endpoint + "/websocket". It does not connect until
// [Socket.Connect]. opts may be nil.
func NewSocket(endpoint string, opts *Options) *Socket {
	s := &Socket{endpoint: endpoint}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.Serializer == nil {
		o.Serializer = wire.V2
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 30 * time.Second
	}
	if o.ReconnectAfter == nil {
		o.ReconnectAfter = DefaultReconnectAfter
	}
	if o.RejoinAfter == nil {
		o.RejoinAfter = DefaultRejoinAfter
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 20
	}
	if o.LongPollTimeout <= 0 {
		o.LongPollTimeout = 20 * time.Second
	}
	if o.Transport == TransportLongPoll {
		s.lpClient = newLongPollClient(o)
	}
	s.ser = o.Serializer
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.reconnect = backoff{s: s, calc: o.ReconnectAfter, fn: s.reconnectNow}
	s.waiters = make(map[chan error]struct{})
	s.leaves = make(map[string]*leaveWait)
	return s
}

// Connect starts connecting and waits for the first attempt: it returns nil
// once the socket is open, or that attempt's error (a [*HandshakeError] when
// the server refused the upgrade). Either way the socket keeps reconnecting
// in the background with ReconnectAfter, as phoenix.js does, until
// [Socket.Disconnect] or [Socket.Close]; ctx only bounds the wait. Calling
// Connect on an open socket returns nil at once.
func (s *Socket) Connect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.isConnected() {
		s.mu.Unlock()
		return nil
	}
	w := make(chan error, 1)
	s.waiters[w] = struct{}{}
	s.connect()
	s.mu.Unlock()
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiters, w)
		s.mu.Unlock()
		select {
		case err := <-w:
			return err
		default:
		}
		return ctx.Err()
	}
}

// Disconnect closes the connection with code 1000 and stops reconnecting
// (phoenix.js's disconnect). Joined channels become errored and rejoin when
// Connect is called again. It waits for the connection to close, or ctx.
func (s *Socket) Disconnect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closeWasClean = true
	s.reconnect.reset()
	c := s.conn
	if c == nil {
		s.mu.Unlock()
		return nil
	}
	c.ended = true
	s.teardown(c, CloseNormal, "")
	s.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close disconnects with code 1000 for good: nothing reconnects, pending
// joins, pushes and pings return ErrClosed, and later calls return
// ErrClosed. It returns once every goroutine of the socket has exited,
// after the callbacks still queued have run (waiting at most 5s for them,
// and not at all when called from a callback). Close is idempotent.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closeWasClean = true
	s.reconnect.reset()
	if c := s.conn; c != nil {
		c.ended = true
		s.teardown(c, CloseNormal, "")
	}
	s.closed = true
	s.clearHeartbeats()
	for _, ch := range s.channels {
		ch.shutdown(ErrClosed)
	}
	for w := range s.waiters {
		w <- ErrClosed
	}
	clear(s.waiters)
	for ref, lw := range s.leaves {
		lw.timer.stop()
		close(lw.done)
		delete(s.leaves, ref)
	}
	s.sendBuffer = nil
	s.mu.Unlock()
	s.wg.Wait()
	if s.lpClient != nil {
		s.lpClient.CloseIdleConnections()
	}
	s.disp.wait(5 * time.Second)
	return nil
}

// IsConnected reports whether the socket is open.
func (s *Socket) IsConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isConnected()
}

// Ping sends a heartbeat and returns the round-trip time of its reply
// (phoenix.js's ping).
func (s *Socket) Ping(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if !s.isConnected() {
		s.mu.Unlock()
		return 0, ErrNotConnected
	}
	type pong struct {
		rtt time.Duration
		err error
	}
	w := make(chan pong, 1)
	c := s.conn
	ref := s.makeRef()
	start := time.Now()
	c.pings[ref] = func(err error) { w <- pong{time.Since(start), err} }
	s.push(outMsg{ref: ref, topic: wire.TopicPhoenix, event: wire.EventHeartbeat, payload: []byte("{}")}, nil)
	s.mu.Unlock()
	select {
	case p := <-w:
		return p.rtt, p.err
	case <-ctx.Done():
		s.mu.Lock()
		delete(c.pings, ref)
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}

// OnOpen registers f to run each time the socket opens.
func (s *Socket) OnOpen(f func()) Ref { return s.addCallback(callback{kind: cbOpen, open: f}) }

// OnClose registers f to run each time the connection closes.
func (s *Socket) OnClose(f func(CloseEvent)) Ref {
	return s.addCallback(callback{kind: cbClose, close: f})
}

// OnError registers f to run when a connection attempt fails.
func (s *Socket) OnError(f func(error)) Ref { return s.addCallback(callback{kind: cbError, err: f}) }

// OnMessage registers f to run for every message received, after the
// channels' handlers.
func (s *Socket) OnMessage(f func(Message)) Ref {
	return s.addCallback(callback{kind: cbMessage, message: f})
}

// Off removes callbacks registered with OnOpen, OnClose, OnError and
// OnMessage.
func (s *Socket) Off(refs ...Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks = slices.DeleteFunc(s.callbacks, func(cb callback) bool { return slices.Contains(refs, cb.ref) })
}

func (s *Socket) addCallback(cb callback) Ref {
	s.mu.Lock()
	defer s.mu.Unlock()
	// phoenix.js draws callback refs from the message ref counter; doing
	// the same keeps the refs on the wire identical to its own.
	s.ref++
	cb.ref = Ref(s.ref)
	s.callbacks = append(s.callbacks, cb)
	return cb.ref
}

// Channel returns a new Channel for topic; it does nothing until
// [Channel.Join]. params is the join payload: a func() any (or func()
// map[string]any) called on every join attempt, or any value to marshal as
// JSON; nil sends {}.
func (s *Socket) Channel(topic string, params any) *Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := newChannel(s, topic, params)
	// phoenix.js's Channel registers two socket callbacks, each taking a
	// ref: the first join of a new socket is "3" there, and here too.
	s.ref += 2
	if !s.closed {
		s.channels = append(s.channels, ch)
	}
	return ch
}

// ---- internals; everything below runs with s.mu held ----

func (s *Socket) makeRef() string {
	s.ref++
	return strconv.FormatUint(s.ref, 10)
}

func (s *Socket) isConnected() bool { return s.conn != nil && s.conn.isOpen() }

// connect starts a connection unless one is current.
func (s *Socket) connect() {
	if s.closed || (s.conn != nil && !s.conn.ended) {
		return
	}
	prev := s.conn
	s.closeWasClean = false
	// A pending reconnect would tear down the new connection; its tries
	// are kept until a connection opens.
	s.reconnect.cancel()
	c := newConn(s)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancelDial = cancel
	s.conn = c
	if prev != nil && prev.isOpen() {
		s.triggerChanError("connection_closed", prev)
	}
	s.wg.Add(1)
	go c.dial(ctx)
}

func (s *Socket) reconnectNow() {
	if s.conn == nil || s.conn.ended {
		s.connect()
	}
}

// dialTarget computes the URL and subprotocols of a connection attempt. It
// runs without the lock, since it calls user funcs.
func (s *Socket) dialTarget() (string, []string, error) {
	if t := s.opts.Transport; t != "" && t != TransportWebSocket {
		return "", nil, fmt.Errorf("client: unknown transport %q", t)
	}
	endpoint := s.endpoint
	if s.opts.URL != nil {
		endpoint = s.opts.URL()
	}
	var params map[string]any
	if s.opts.Params != nil {
		params = s.opts.Params()
	}
	u, err := endpointURL(endpoint, params, s.ser.Vsn())
	if err != nil {
		return "", nil, err
	}
	var protocols []string
	if s.opts.AuthToken != nil {
		protocols = authProtocols(s.opts.AuthToken())
	}
	return u, protocols, nil
}

// endpointURL is phoenix.js's endPointURL: endpoint + "/websocket", the
// params, then vsn.
func endpointURL(endpoint string, params map[string]any, vsn string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("client: bad endpoint %q: %w", endpoint, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("client: endpoint %q: scheme must be ws, wss, http or https", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/websocket"
	u.RawPath = ""
	q := serializeParams(params, "")
	q = append(q, "vsn="+encodeURIComponent(vsn))
	if u.RawQuery != "" {
		u.RawQuery += "&" + strings.Join(q, "&")
	} else {
		u.RawQuery = strings.Join(q, "&")
	}
	return u.String(), nil
}

// serializeParams is phoenix.js's Ajax.serialize: nested maps and slices
// become key[sub]=value. Map keys are sorted, since Go maps have no order.
func serializeParams(v any, parent string) []string {
	var out []string
	add := func(key string, val any) {
		if parent != "" {
			key = parent + "[" + key + "]"
		}
		switch val.(type) {
		case map[string]any, []any, map[string]string, []string:
			out = append(out, serializeParams(val, key)...)
		case nil:
		default:
			out = append(out, encodeURIComponent(key)+"="+encodeURIComponent(paramString(val)))
		}
	}
	switch m := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(m)) {
			add(k, m[k])
		}
	case map[string]string:
		for _, k := range slices.Sorted(maps.Keys(m)) {
			add(k, m[k])
		}
	case []any:
		for i, e := range m {
			add(strconv.Itoa(i), e)
		}
	case []string:
		for i, e := range m {
			add(strconv.Itoa(i), e)
		}
	}
	return out
}

func paramString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	}
	return fmt.Sprint(v)
}

// encodeURIComponent escapes like JavaScript's: everything but
// A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// onConnOpen is phoenix.js's onConnOpen.
func (s *Socket) onConnOpen(c *conn) {
	s.closeWasClean = false
	s.flushSendBuffer()
	s.reconnect.reset()
	s.resetHeartbeat()
	for _, ch := range slices.Clone(s.channels) {
		ch.rejoinTimer.reset()
		if ch.state == StateErrored {
			ch.rejoin()
		}
	}
	for _, cb := range s.callbacks {
		if cb.kind == cbOpen {
			s.disp.post(cb.open)
		}
	}
	for w := range s.waiters {
		w <- nil
	}
	clear(s.waiters)
}

// connClosed handles the end of a connection, once. It is phoenix.js's
// onConnError, when err is set (a failed dial, a long-poll failure),
// followed by onConnClose.
func (s *Socket) connClosed(c *conn, ev CloseEvent, err error) {
	wasOpen := c.opened
	c.state = connClosed
	defer close(c.done)
	for ref, f := range c.pings {
		delete(c.pings, ref)
		f(ErrConnectionLost)
	}
	if c != s.conn {
		return // replaced: its events no longer concern the socket
	}
	if err != nil {
		s.onConnError(c, err)
	}
	closedByUs := c.closing
	s.clearHeartbeats()
	s.triggerChanError("connection_closed", c)
	s.conn = nil
	for ref, lw := range s.leaves {
		lw.timer.stop()
		close(lw.done)
		delete(s.leaves, ref)
	}
	if !s.closed && !c.ended && !s.closeWasClean && (!closedByUs || c.reconnect) {
		s.reconnect.schedule()
	}
	for _, cb := range s.callbacks {
		if cb.kind == cbClose {
			f := cb.close
			s.disp.post(func() { f(ev) })
		}
	}
	if !wasOpen {
		if err == nil {
			err = fmt.Errorf("client: connection closed before it opened (code %d)", ev.Code)
		}
		for w := range s.waiters {
			w <- err
		}
		clear(s.waiters)
	}
	s.log.Debug("connection closed", "code", ev.Code, "reason", ev.Reason, "clean", ev.WasClean)
}

// onConnError is phoenix.js's onConnError.
func (s *Socket) onConnError(c *conn, err error) {
	for _, cb := range s.callbacks {
		if cb.kind == cbError {
			f := cb.err
			s.disp.post(func() { f(err) })
		}
	}
	for _, ch := range s.channels {
		ch.rejoinTimer.reset()
	}
	s.triggerChanError("connection_error", c)
}

// triggerChanError errors the channels that must rejoin because c stopped
// being open (phoenix.js's triggerChanError).
func (s *Socket) triggerChanError(reason string, c *conn) {
	erroredBefore := false
	if c != nil && !c.isOpen() {
		erroredBefore = c.channelsErrored
		c.channelsErrored = true
	}
	type join struct {
		ch  *Channel
		ref string
	}
	joins := make([]join, len(s.channels))
	for i, ch := range s.channels {
		joins[i] = join{ch, ch.joinRef()}
	}
	for _, j := range joins {
		ch := j.ch
		if ch.joinRef() != j.ref {
			continue
		}
		if c != nil && (erroredBefore || c != s.conn) && !c.carried(ch, j.ref) {
			continue
		}
		if ch.state != StateErrored && ch.state != StateLeaving && ch.state != StateClosed {
			ch.triggerLocal(wire.EventError, []byte(`{"source":"transport","reason":`+strconv.Quote(reason)+`}`))
		}
	}
}

// teardown closes c from the client side (phoenix.js's teardown).
func (s *Socket) teardown(c *conn, code int, reason string) {
	s.clearHeartbeats()
	if !c.closing {
		wasOpened := c.state != connConnecting
		c.close(code, reason)
		if wasOpened {
			s.triggerChanError("connection_closed", c)
		}
	}
}

func (s *Socket) resetHeartbeat() {
	// Long-poll does not heartbeat (phoenix.js's skipHeartbeat): every
	// poll already proves the session alive.
	if s.opts.HeartbeatInterval < 0 || s.opts.Transport == TransportLongPoll {
		return
	}
	s.clearHeartbeats()
	s.hbTimer = s.after(s.opts.HeartbeatInterval, s.sendHeartbeat)
}

func (s *Socket) clearHeartbeats() {
	s.hbTimer.stop()
	s.hbTimeout.stop()
	s.hbTimer, s.hbTimeout = nil, nil
	s.pendingHeartbeat = ""
}

func (s *Socket) sendHeartbeat() {
	s.hbTimer = nil
	if s.pendingHeartbeat != "" && !s.isConnected() {
		return
	}
	s.pendingHeartbeat = s.makeRef()
	s.push(outMsg{ref: s.pendingHeartbeat, topic: wire.TopicPhoenix, event: wire.EventHeartbeat, payload: []byte("{}")}, nil)
	s.hbTimeout = s.after(s.opts.HeartbeatInterval, s.heartbeatTimeout)
}

// heartbeatTimeout closes a connection whose heartbeat went unanswered and
// reconnects once it has closed.
func (s *Socket) heartbeatTimeout() {
	s.hbTimeout = nil
	if s.pendingHeartbeat == "" {
		return
	}
	c := s.conn
	s.pendingHeartbeat = ""
	s.closeWasClean = false
	s.log.Debug("heartbeat timeout; reconnecting")
	if c != nil {
		c.reconnect = true
		c.close(CloseNormal, "heartbeat timeout")
	}
	s.triggerChanError("heartbeat_timeout", c)
}

// push sends m now if the socket is open, or buffers it until it opens.
func (s *Socket) push(m outMsg, ch *Channel) {
	if s.isConnected() {
		s.send(m, ch)
		return
	}
	s.sendBuffer = append(s.sendBuffer, buffered{m, ch})
}

func (s *Socket) send(m outMsg, ch *Channel) {
	c := s.conn
	if ch != nil && m.event == wire.EventJoin {
		c.joins[ch] = m.joinRef
	}
	// A leave still goes out after its channel was removed locally.
	if m.event != wire.EventLeave && s.isOutdated(m, ch) {
		return
	}
	data, bin, err := encodeFrame(s.ser, &m)
	if err != nil {
		s.log.Warn("dropping unencodable message", "topic", m.topic, "event", m.event, "err", err)
		return
	}
	c.send(data, bin)
}

// isOutdated reports whether a push was made for an earlier join of its
// channel, or the channel has closed since.
func (s *Socket) isOutdated(m outMsg, ch *Channel) bool {
	return ch != nil && (m.joinRef != ch.joinRef() || ch.state == StateClosed)
}

func (s *Socket) flushSendBuffer() {
	if !s.isConnected() || len(s.sendBuffer) == 0 {
		return
	}
	buf := s.sendBuffer
	s.sendBuffer = nil
	for _, b := range buf {
		if !s.isOutdated(b.m, b.ch) {
			s.send(b.m, b.ch)
		}
	}
}

// handleFrame decodes and routes one frame read from c. It runs on c's
// reader goroutine.
func (s *Socket) handleFrame(c *conn, data []byte, binary bool) {
	m, err := decodeFrame(s.ser, data, binary)
	if err != nil {
		s.log.Warn("dropping undecodable frame", "err", err, "binary", binary, "len", len(data))
		return
	}
	s.mu.Lock()
	s.onConnMessage(c, &m)
	s.mu.Unlock()
}

// onConnMessage is phoenix.js's onConnMessage.
func (s *Socket) onConnMessage(c *conn, m *inMsg) {
	if c != s.conn || !c.isOpen() {
		return // browsers drop what arrives once a WebSocket is closing
	}
	if m.ref != "" && m.ref == s.pendingHeartbeat {
		s.clearHeartbeats()
		s.hbTimer = s.after(s.opts.HeartbeatInterval, s.sendHeartbeat)
	}
	// V1 frames carry no join_ref; phx_close and phx_error carry the
	// channel's join ref as their ref, which identifies stale ones.
	if m.joinRef == "" && s.ser.Vsn() == wire.V1.Vsn() && (m.event == wire.EventClose || m.event == wire.EventError) {
		m.joinRef = m.ref
	}
	for _, ch := range slices.Clone(s.channels) {
		if ch.isMember(m) {
			ch.trigger(m)
		}
	}
	if m.event == wire.EventReply {
		if lw := s.leaves[m.ref]; lw != nil {
			delete(s.leaves, m.ref)
			lw.timer.stop()
			close(lw.done)
		}
	}
	var msg *Message
	for _, cb := range s.callbacks {
		if cb.kind == cbMessage {
			if msg == nil {
				msg = &Message{Topic: m.topic, Event: m.event, Payload: m.payload, Binary: m.binary, Ref: m.ref, JoinRef: m.joinRef}
			}
			f, mm := cb.message, *msg
			s.disp.post(func() { f(mm) })
		}
	}
	if m.ref != "" {
		if f := c.pings[m.ref]; f != nil {
			delete(c.pings, m.ref)
			f(nil)
		}
	}
}

// leaveOpenTopic leaves any other channel joined or joining topic, so that
// one Channel at a time owns a topic on the socket.
func (s *Socket) leaveOpenTopic(topic string) {
	for _, ch := range s.channels {
		if ch.topic == topic && (ch.state == StateJoined || ch.state == StateJoining) {
			s.log.Debug("leaving duplicate topic", "topic", topic)
			ch.leave()
			return
		}
	}
}

// remove drops a closed channel from the socket.
func (s *Socket) remove(ch *Channel) {
	s.channels = slices.DeleteFunc(s.channels, func(c *Channel) bool { return c == ch })
}
