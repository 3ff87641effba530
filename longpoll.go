package plume

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumehq/plume/wire"
)

// The long-poll transport (Phoenix.Transports.LongPoll), served at
// <mount>/longpoll. A session is a Conn like a WebSocket's: the same Connect,
// channels, broadcasts, "disconnect" on the socket id and drain. Its HTTP
// contract is Phoenix's (phoenix-protocol.md §3):
//
//   - Every JSON reply is HTTP 200 with the real status in the body, and
//     carries access-control-allow-origin: *, content-type: application/json;
//     charset=utf-8 and cache-control: no-store.
//   - GET without a live session runs Connect and answers
//     {"messages":[],"status":410,"token":T}; {"status":403} when refused,
//     for an unsupported vsn, or when the origin check fails. While the
//     endpoint drains it answers HTTP 503 with no body, which phoenix.js
//     treats like a network error and retries later, as for a WebSocket.
//   - GET with a session's token (?token= or the x-phoenix-longpoll-token
//     header) answers the buffered frames at once, {"messages":[...],
//     "status":200,"token":T}, or waits up to Socket.LongPollWindow for some
//     and answers 204. A poll that finds its session closed answers
//     {"status":410}, which phoenix.js takes as "session gone": it
//     reconnects and rejoins. Frames buffered before the close are still
//     delivered, as a WebSocket flushes its queue before its close frame.
//   - POST takes application/x-ndjson (the first 100 lines; a line starting
//     with "[" is a text frame, any other non-empty line standard base64 of a
//     binary frame) or, for any other content type, the whole body as one
//     text frame, and answers {"status":200}; {"status":408} if a frame was
//     not handled within the window (the rest are dropped); {"status":410}
//     without a live session.
//   - A malformed frame ends the session as it closes a WebSocket (1011), and
//     the POST answers {"status":408} at once: what Phoenix answers too, after
//     waiting out the window for an acknowledgement its crashed session never
//     sends (transcript LP.8). A frame above Socket.MaxFrameSize, or a body
//     above 100 such frames in base64 or 8 MiB, whichever is less (but never
//     less than one such frame), ends the session as a WebSocket closes with
//     1009, and the POST answers {"status":413}.
//   - OPTIONS answers the CORS preflight; any other method gets 400.
//
// Binary frames from the server cannot travel: a long-poll reply is JSON and
// phoenix.js's LongPoll hands each message to the JSON decoder (Phoenix puts
// the raw bytes in the JSON string, which breaks on non-UTF-8 and on the
// client). Plume drops them and logs a warning once per session; a binary
// reply therefore never reaches a long-poll client, whose push times out.
//
// A session ends, with its channels (ErrClosed), 1.5 × the window after its
// last poll. Its token is HMAC-signed and expires (longpoll_token.go), and it
// names the node that owns the session: a request that lands on another node
// is carried to the owner through the PubSub adapter (longpoll_cluster.go),
// so a cluster needs no sticky sessions as long as every node shares
// Options.LongPollSecret.

const (
	lpMaxLines = 100
	// lpBodyCap bounds a POST body unless one maximal frame needs more.
	lpBodyCap = 8 << 20
)

// longPoll serves the long-poll transport and holds its sessions.
type longPoll struct {
	e           *Endpoint
	key         []byte
	tokenMaxAge time.Duration
	now         func() time.Time // the tokens' clock; tests move it

	mu       sync.Mutex
	sessions map[lpID]*lpSession
	closed   bool

	cl lpCluster // routing to and from other nodes (longpoll_cluster.go)
}

func newLongPoll(e *Endpoint) *longPoll {
	return &longPoll{
		e:           e,
		key:         lpKey(e.opts.LongPollSecret),
		tokenMaxAge: lpDefaultTokenMaxAge,
		now:         time.Now,
		sessions:    make(map[lpID]*lpSession),
	}
}

func (s *Socket) longPollWindow() time.Duration {
	if s.LongPollWindow > 0 {
		return s.LongPollWindow
	}
	return 10 * time.Second
}

// lpMaxBody is the largest POST body read: 100 maximal frames in base64, but
// no more than 8 MiB unless a single maximal frame needs more.
func lpMaxBody(s *Socket) int64 {
	line := int64(base64.StdEncoding.EncodedLen(int(s.maxFrameSize()))) + 2
	return min(lpMaxLines*line, max(lpBodyCap, line))
}

func (lp *longPoll) node() string { return lp.e.pubsub.NodeName() }

func (lp *longPoll) serve(w http.ResponseWriter, r *http.Request, s *Socket) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodOptions:
		h := w.Header()
		h.Set("Access-Control-Allow-Headers", strings.Join(r.Header.Values("Access-Control-Request-Headers"), ", "))
		h.Set("Access-Control-Allow-Methods", "get, post, options")
		h.Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		if !lp.checkOrigin(w, r, s) {
			return
		}
		lp.attach()
		sess, handled := lp.session(w, r, s)
		if handled {
			return
		}
		if sess == nil {
			lp.open(w, r, s)
			return
		}
		lpReply(w, lp.exec(r.Context(), sess, &lpRequest{}))
	case http.MethodPost:
		if !lp.checkOrigin(w, r, s) {
			return
		}
		lp.attach()
		sess, handled := lp.session(w, r, s)
		if handled {
			return
		}
		if sess == nil {
			lpWriteStatus(w, 410)
			return
		}
		req, ok := lpReadPost(w, r, s)
		if !ok {
			return
		}
		lpReply(w, lp.exec(r.Context(), sess, req))
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

// checkOrigin applies the socket's origin check to every request, as
// Phoenix does, answering {"status":403} when it fails.
func (lp *longPoll) checkOrigin(w http.ResponseWriter, r *http.Request, s *Socket) bool {
	if s.checkOrigin(r) {
		return true
	}
	lp.e.log.Error("REFUSED CONNECTION: origin not allowed", "origin", r.Header.Get("Origin"), "transport", TransportLongPoll)
	lpWriteStatus(w, 403)
	return false
}

// lpTokenOf returns the session token of a request: the token query
// parameter (phoenix.js 1.8), else the x-phoenix-longpoll-token header (1.9).
func lpTokenOf(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	return r.Header.Get("X-Phoenix-Longpoll-Token")
}

// session resolves the request's token to a live session of s on this
// node. A forged, expired or unknown token gives nil. A valid token naming
// another node is offered to forward first; handled reports that forward
// answered the request (nil, false: the owner is gone or unreachable).
func (lp *longPoll) session(w http.ResponseWriter, r *http.Request, s *Socket) (sess *lpSession, handled bool) {
	raw := lpTokenOf(r)
	if raw == "" {
		return nil, false
	}
	tok, err := lp.verify(raw, lp.now().UnixMilli())
	if err != nil {
		lp.e.log.Debug("long-poll token refused", "err", err)
		return nil, false
	}
	if tok.node != lp.node() {
		return nil, lp.forward(w, r, s, tok)
	}
	lp.mu.Lock()
	sess = lp.sessions[tok.id]
	lp.mu.Unlock()
	if sess == nil || sess.socket != s {
		return nil, false
	}
	return sess, false
}

// open runs Connect for a GET without a live session and starts a session.
func (lp *longPoll) open(w http.ResponseWriter, r *http.Request, s *Socket) {
	if lp.e.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	c, err := lp.e.connect(r, s, TransportLongPoll, r.Header.Get("X-Phoenix-AuthToken"))
	if err != nil {
		lpWriteStatus(w, 403)
		return
	}
	sess := &lpSession{
		lp:       lp,
		id:       newLPID(),
		conn:     c,
		socket:   s,
		window:   s.longPollWindow(),
		maxQueue: s.maxQueueBytes(),
		inbound:  make(chan struct{}, 1),
		lastPoll: time.Now(),
	}
	c.transport = sess
	c.start()
	sess.mu.Lock()
	token := sess.tokenLocked()
	sess.timer = time.AfterFunc(sess.idle(), sess.expire)
	sess.mu.Unlock()
	lp.mu.Lock()
	if lp.closed {
		lp.mu.Unlock()
		sess.closeWith(CloseServiceRestart, "server restart", true)
		<-c.Done()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	lp.sessions[sess.id] = sess
	lp.mu.Unlock()
	lpWriteMessages(w, 410, token, nil)
}

// remove forgets a session and stops its timer.
func (lp *longPoll) remove(s *lpSession) {
	lp.mu.Lock()
	if lp.sessions[s.id] == s {
		delete(lp.sessions, s.id)
	}
	lp.mu.Unlock()
	s.mu.Lock()
	s.gone = true
	s.buf, s.queued = nil, 0
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
}

// closeAll ends every session left once Shutdown has drained the
// connections (sessions opened meanwhile, and closed ones still holding
// frames) and refuses new ones.
func (lp *longPoll) closeAll() {
	lp.mu.Lock()
	lp.closed = true
	sessions := make([]*lpSession, 0, len(lp.sessions))
	for _, s := range lp.sessions {
		sessions = append(sessions, s)
	}
	lp.mu.Unlock()
	for _, s := range sessions {
		s.conn.drain()
		lp.remove(s)
	}
	for _, s := range sessions {
		<-s.conn.Done()
	}
	lp.detach()
}

// lpRequest is a long-poll request for a session, as exec runs it: a poll,
// or a POST's body. A request forwarded from another node arrives as one.
type lpRequest struct {
	post   bool
	body   []byte
	ndjson bool // body is application/x-ndjson
	tooBig bool // the body passed lpMaxBody and was not read
	// wait caps a poll's wait below the session's window and maxBytes the
	// frames one reply takes (0: no cap); a forwarded poll sets both.
	wait     time.Duration
	maxBytes int
}

// lpReadPost reads a POST's body for s. ok is false when the client went
// away; a body above lpMaxBody gives a request with tooBig set.
func lpReadPost(w http.ResponseWriter, r *http.Request, s *Socket) (req *lpRequest, ok bool) {
	req = &lpRequest{post: true}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lpMaxBody(s)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			return nil, false
		}
		req.tooBig = true
		return req, true
	}
	req.body = body
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-ndjson" {
		req.ndjson = true
	}
	return req, true
}

// exec runs a request against a session of this node, whether it arrived
// here or was forwarded by another node, and returns the JSON body to answer
// (nil: none, the client went away). A POST hands the body's frames to the
// session in order.
func (lp *longPoll) exec(ctx context.Context, sess *lpSession, req *lpRequest) []byte {
	if !req.post {
		return sess.poll(ctx, req.wait, req.maxBytes)
	}
	if req.tooBig {
		lp.e.log.Error("closing long-poll session: POST body too large", "id", sess.conn.id, "limit", lpMaxBody(sess.socket))
		sess.closeWith(CloseTooBig, "body too large", false)
		return lpStatusBody(413)
	}
	var frames [][]byte
	if req.ndjson {
		frames = lpLines(req.body)
	} else if len(req.body) > 0 {
		frames = [][]byte{req.body}
	}
	if status := sess.publish(ctx, frames, req.ndjson); status != 0 {
		return lpStatusBody(status)
	}
	return nil
}

// lpLines splits an ndjson body on "\n" or "\r\n" and keeps the non-empty
// lines among the first 100, as Phoenix processes only those.
func lpLines(body []byte) [][]byte {
	var lines [][]byte
	for n := 0; n < lpMaxLines && len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

func lpWriteStatus(w http.ResponseWriter, status int) { lpWrite(w, lpStatusBody(status)) }

// lpStatusBody is {"status":S}.
func lpStatusBody(status int) []byte {
	b := make([]byte, 0, 16)
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, '}')
}

func lpWriteMessages(w http.ResponseWriter, status int, token string, msgs [][]byte) {
	lpWrite(w, lpMessagesBody(status, token, msgs))
}

// lpMessagesBody is {"messages":[...],"status":S,"token":T}, each message
// the frame's text as a JSON string (keys in Phoenix's order).
func lpMessagesBody(status int, token string, msgs [][]byte) []byte {
	n := 64 + len(token)
	for _, m := range msgs {
		n += len(m) + len(m)/8 + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, string(m))
	}
	b = append(b, `],"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"token":`...)
	b = wire.AppendString(b, token)
	return append(b, '}')
}

// lpReply writes a body from exec, if any.
func lpReply(w http.ResponseWriter, body []byte) {
	if body != nil {
		lpWrite(w, body)
	}
}

func lpWrite(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
