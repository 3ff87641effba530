package plume

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumehq/plume/pubsub"
)

// Long-poll across nodes.
//
// A session lives on the node that opened it, and its token names that node
// (pubsub NodeName). Behind a load balancer without sticky sessions the
// client's next request may land on another node: that node verifies the
// token (every node must share Options.LongPollSecret; without it the token
// fails verification there, and a GET starts a new local session, which
// phoenix.js takes as "session gone" and rejoins) and forwards the request
// to the owner through the PubSub adapter, as Phoenix's phx:lp: topics do:
//
//   - Each node with long-poll in use subscribes to its private topic
//     "phx:lp:<node>". A request is sent there with DirectBroadcast: a poll,
//     or a POST's body and content type, with a correlation id and the
//     name of the node waiting for the answer.
//   - The owner runs it against the session exactly as a local request
//     (longPoll.exec), on a goroutine of its own (never in Deliver), and
//     DirectBroadcasts the JSON body to answer to the sender's topic. A
//     session it does not have is answered "gone" at once.
//   - The sender writes that body as the HTTP reply. "Gone", a broadcast
//     that fails (no adapter, the owner unreachable) or no answer in time
//     (the poll window, or the window per POSTed frame, plus a 2 s margin:
//     Phoenix's pubsub_timeout_ms) is taken as a dead session: a GET starts
//     a new session on this node (410 with a new token), a POST answers
//     {"status":410}. A client that goes away cancels its request on the
//     owner, so a forwarded poll never takes frames nobody will read.
//
// Messages are small binary payloads (pubsub.Message.Binary): a forwarded
// reply takes at most lpForwardMaxReply bytes of frames (at least one frame;
// the rest wait for the next poll), so that it fits an adapter's message
// limit (NATS: 1 MiB by default). A POST body is forwarded whole: one larger
// than the adapter carries fails like an unreachable owner. Nodes should
// share their Socket configuration (window, limits); the owner caps a
// forwarded poll's wait at the sender's window so the sender never gives up
// on a poll still under way.
//
// One subscription serves every Endpoint of a PubSub (lpRouter), so that
// endpoints sharing a PubSub (and so a node name) answer for each other's
// sessions correctly. An endpoint joins it on the first long-poll request it
// serves and leaves it in Shutdown, once its sessions are closed: forwarded
// requests still running are cancelled, and a poll this node is forwarding
// answers 204 with the client's token, so the client polls again (on
// another node) and its session lives on.

const (
	// lpPubSubTimeout is the margin, beyond the time a request may take on
	// its owner, that a forwarding node waits for the answer.
	lpPubSubTimeout = 2 * time.Second
	// lpForwardMaxReply bounds the frames taken by one forwarded poll.
	lpForwardMaxReply = 256 << 10
	// lpForwardPerSession bounds the forwarded requests running at once for
	// one session (phoenix.js has at most a poll and a POST in flight);
	// more are answered "gone".
	lpForwardPerSession = 4
	// lpForwardGoneMax bounds the goroutines answering "gone"; past it a
	// request is dropped and its sender times out.
	lpForwardGoneMax = 64

	lpWireVersion = 1
	lpFlagNDJSON  = 1
	lpFlagTooBig  = 2

	lpEventGet    = "lp_get"
	lpEventPost   = "lp_post"
	lpEventCancel = "lp_cancel"
	lpEventReply  = "lp_reply"
)

// lpTopic is a node's private long-poll topic.
func lpTopic(node string) string { return "phx:lp:" + node }

// lpCluster is a longPoll's part in routing; the zero value is ready.
type lpCluster struct {
	timeout time.Duration // the answer margin; 0 means lpPubSubTimeout

	mu       sync.Mutex
	router   *lpRouter
	closed   bool
	ctx      context.Context // ended by detach
	cancel   context.CancelFunc
	inflight map[lpID]int // forwarded requests running, per session
	wg       sync.WaitGroup
}

func (c *lpCluster) margin() time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return lpPubSubTimeout
}

// attach subscribes this endpoint to its node's long-poll topic, once; it
// returns the router and a context ended when the endpoint shuts down, or
// nil after closeAll.
func (lp *longPoll) attach() (*lpRouter, context.Context) {
	lp.cl.mu.Lock()
	if lp.cl.router != nil || lp.cl.closed {
		defer lp.cl.mu.Unlock()
		return lp.current()
	}
	lp.cl.mu.Unlock()
	rt := lpRouterFor(lp.e.pubsub, lp.e.log)
	lp.cl.mu.Lock()
	if lp.cl.router != nil || lp.cl.closed {
		cur, ctx := lp.current()
		lp.cl.mu.Unlock()
		rt.release()
		return cur, ctx
	}
	lp.cl.ctx, lp.cl.cancel = context.WithCancel(context.Background())
	lp.cl.inflight = make(map[lpID]int)
	lp.cl.router = rt
	rt.add(lp)
	ctx := lp.cl.ctx
	lp.cl.mu.Unlock()
	return rt, ctx
}

// current is attach's result once decided; lp.cl.mu is held.
func (lp *longPoll) current() (*lpRouter, context.Context) {
	if lp.cl.closed {
		return nil, nil
	}
	return lp.cl.router, lp.cl.ctx
}

// detach ends routing for this endpoint (Shutdown, once its sessions are
// closed): forwarded requests still running are cancelled and waited for,
// requests this node is forwarding stop waiting, and the topic is
// unsubscribed when no endpoint of the PubSub uses it any more.
func (lp *longPoll) detach() {
	lp.cl.mu.Lock()
	lp.cl.closed = true
	rt, cancel := lp.cl.router, lp.cl.cancel
	lp.cl.mu.Unlock()
	if rt == nil {
		return
	}
	cancel()
	lp.cl.wg.Wait()
	rt.remove(lp)
	rt.release()
}

// claim finds this endpoint's session for a forwarded request and reserves
// a slot for running it; nil when it has none (or too many in flight).
func (lp *longPoll) claim(id lpID, mount string) (*lpSession, context.Context) {
	lp.mu.Lock()
	sess := lp.sessions[id]
	lp.mu.Unlock()
	if sess == nil {
		return nil, nil
	}
	lp.e.mu.RLock()
	s := lp.e.mounts[mount]
	lp.e.mu.RUnlock()
	if s != sess.socket || s.DisableLongPoll {
		return nil, nil
	}
	lp.cl.mu.Lock()
	defer lp.cl.mu.Unlock()
	if lp.cl.closed || lp.cl.router == nil {
		return nil, nil
	}
	if lp.cl.inflight[id] >= lpForwardPerSession {
		lp.e.log.Warn("long-poll: too many forwarded requests for one session", "id", sess.conn.id)
		return nil, nil
	}
	lp.cl.inflight[id]++
	lp.cl.wg.Add(1)
	return sess, lp.cl.ctx
}

func (lp *longPoll) unclaim(id lpID) {
	lp.cl.mu.Lock()
	if lp.cl.inflight[id]--; lp.cl.inflight[id] <= 0 {
		delete(lp.cl.inflight, id)
	}
	lp.cl.mu.Unlock()
	lp.cl.wg.Done()
}

// forward carries a request for a session of another node (tok.node) to it
// and writes its answer. It reports whether the request was answered (or
// the client went away); false means the session is to be taken as dead.
func (lp *longPoll) forward(w http.ResponseWriter, r *http.Request, s *Socket, tok lpToken) bool {
	rt, done := lp.attach()
	if rt == nil {
		return false
	}
	window := s.longPollWindow()
	f := lpForward{from: rt.node, sid: tok.id, wait: window}
	f.mount, _, _ = cutLast(r.URL.Path)
	event, limit := lpEventGet, window
	if r.Method == http.MethodPost {
		req, ok := lpReadPost(w, r, s)
		if !ok {
			return true
		}
		f.body = req.body
		if req.ndjson {
			f.flags |= lpFlagNDJSON
		}
		if req.tooBig {
			f.flags |= lpFlagTooBig
		}
		// Each frame may take a window, after one for the POST before.
		frames := 1
		if req.ndjson {
			frames = min(bytes.Count(req.body, []byte{'\n'})+1, lpMaxLines)
		}
		event, limit = lpEventPost, time.Duration(frames+1)*window
	}
	f.id, f.replies = rt.expect()
	defer rt.forget(f.id)
	if err := rt.send(r.Context(), tok.node, event, f.marshal()); err != nil {
		lp.e.log.Debug("long-poll: cannot reach the session's node", "node", tok.node, "err", err)
		return false
	}
	timer := time.NewTimer(limit + lp.cl.margin())
	defer timer.Stop()
	select {
	case body := <-f.replies:
		if len(body) == 0 {
			lp.e.log.Debug("long-poll: session gone on its node", "node", tok.node)
			return false
		}
		lpWrite(w, body)
		return true
	case <-timer.C:
		lp.e.log.Warn("long-poll: the session's node did not answer", "node", tok.node, "after", limit+lp.cl.margin())
		rt.cancel(tok.node, f.id)
		return false
	case <-r.Context().Done():
		rt.cancel(tok.node, f.id)
		return true
	case <-done.Done():
		// This endpoint shuts down while the owner still serves the
		// session: a poll answers "nothing yet" with the token it came
		// with, so the client polls again (elsewhere, once this node is
		// gone); a POST whose fate is unknown answers as a drain does.
		rt.cancel(tok.node, f.id)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			lpWriteMessages(w, 204, lpTokenOf(r), nil)
		}
		return true
	}
}

// lpRouter is the subscriber of a PubSub's long-poll topic, shared by the
// endpoints using that PubSub: it runs requests forwarded to their sessions
// and hands answers to their forwarding requests.
type lpRouter struct {
	ps    *pubsub.PubSub
	node  string
	topic string
	refs  int // under lpRouters.mu
	seq   atomic.Uint64
	gone  chan struct{} // slots for goroutines answering "gone"
	wg    sync.WaitGroup
	log   *slog.Logger

	mu      sync.Mutex
	lps     []*longPoll
	pending map[uint64]chan []byte          // forwarded by this node, awaiting answers
	running map[lpRunKey]context.CancelFunc // forwarded to this node, running
}

type lpRunKey struct {
	from string
	id   uint64
}

var lpRouters = struct {
	mu sync.Mutex
	m  map[*pubsub.PubSub]*lpRouter
}{m: make(map[*pubsub.PubSub]*lpRouter)}

// lpRouterFor returns ps's router, subscribing it on first use; release
// gives it back.
func lpRouterFor(ps *pubsub.PubSub, log *slog.Logger) *lpRouter {
	lpRouters.mu.Lock()
	defer lpRouters.mu.Unlock()
	rt := lpRouters.m[ps]
	if rt == nil {
		rt = &lpRouter{
			ps:      ps,
			node:    ps.NodeName(),
			topic:   lpTopic(ps.NodeName()),
			gone:    make(chan struct{}, lpForwardGoneMax),
			log:     log,
			pending: make(map[uint64]chan []byte),
			running: make(map[lpRunKey]context.CancelFunc),
		}
		// Correlation ids start at random, so that a restarted node never
		// takes an answer meant for its previous life.
		var b [8]byte
		rand.Read(b[:])
		rt.seq.Store(binary.BigEndian.Uint64(b[:]))
		if err := ps.Subscribe(rt.topic, rt); err != nil {
			log.Error("long-poll: subscribing the node's topic failed", "topic", rt.topic, "err", err)
		}
		lpRouters.m[ps] = rt
	}
	rt.refs++
	return rt
}

// release drops a reference; the last unsubscribes (under the registry
// lock, so a new router for ps never overlaps this one) and waits for the
// goroutines answering "gone".
func (rt *lpRouter) release() {
	lpRouters.mu.Lock()
	rt.refs--
	last := rt.refs == 0
	if last {
		delete(lpRouters.m, rt.ps)
		// Unsubscribe waits for a Deliver under way, so no goroutine
		// starts after it.
		rt.ps.Unsubscribe(rt.topic, rt)
	}
	lpRouters.mu.Unlock()
	if last {
		rt.wg.Wait()
	}
}

func (rt *lpRouter) add(lp *longPoll) {
	rt.mu.Lock()
	rt.lps = append(rt.lps, lp)
	rt.mu.Unlock()
}

func (rt *lpRouter) remove(lp *longPoll) {
	rt.mu.Lock()
	for i, x := range rt.lps {
		if x == lp {
			rt.lps = append(rt.lps[:i:i], rt.lps[i+1:]...)
			break
		}
	}
	rt.mu.Unlock()
}

// expect registers a forwarding request awaiting its answer.
func (rt *lpRouter) expect() (uint64, chan []byte) {
	id := rt.seq.Add(1)
	ch := make(chan []byte, 1)
	rt.mu.Lock()
	rt.pending[id] = ch
	rt.mu.Unlock()
	return id, ch
}

func (rt *lpRouter) forget(id uint64) {
	rt.mu.Lock()
	delete(rt.pending, id)
	rt.mu.Unlock()
}

// send DirectBroadcasts a long-poll message to node's topic.
func (rt *lpRouter) send(ctx context.Context, node, event string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, lpPubSubTimeout)
	defer cancel()
	return rt.ps.DirectBroadcast(ctx, node, &pubsub.Message{Topic: lpTopic(node), Event: event, Payload: payload, Binary: true})
}

// cancel tells node to stop running request id, whose answer nobody waits
// for any more.
func (rt *lpRouter) cancel(node string, id uint64) {
	b := make([]byte, 0, 11+len(rt.node))
	b = append(b, lpWireVersion)
	b = binary.BigEndian.AppendUint64(b, id)
	b = lpAppendString(b, rt.node)
	rt.send(context.Background(), node, lpEventCancel, b)
}

// Deliver implements pubsub.Subscriber. It never blocks: requests run on
// goroutines of their own.
func (rt *lpRouter) Deliver(m *pubsub.Message) {
	p := m.Payload
	if len(p) < 9 || p[0] != lpWireVersion {
		return
	}
	id := binary.BigEndian.Uint64(p[1:9])
	switch m.Event {
	case lpEventReply:
		rt.mu.Lock()
		ch := rt.pending[id]
		rt.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p[9:len(p):len(p)]:
			default:
			}
		}
	case lpEventCancel:
		from, _, ok := lpCutString(p[9:])
		if !ok {
			return
		}
		rt.mu.Lock()
		cancel := rt.running[lpRunKey{from, id}]
		rt.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case lpEventGet, lpEventPost:
		f, ok := lpUnmarshalForward(p)
		if ok {
			rt.run(f, m.Event == lpEventPost)
		}
	}
}

// run starts a forwarded request on the endpoint that has its session, or
// answers "gone".
func (rt *lpRouter) run(f *lpForward, post bool) {
	rt.mu.Lock()
	lps := rt.lps
	rt.mu.Unlock()
	for _, lp := range lps {
		sess, base := lp.claim(f.sid, f.mount)
		if sess == nil {
			continue
		}
		req := &lpRequest{post: post, body: f.body, ndjson: f.flags&lpFlagNDJSON != 0, tooBig: f.flags&lpFlagTooBig != 0}
		if !post {
			req.wait, req.maxBytes = f.wait, lpForwardMaxReply
		}
		key := lpRunKey{f.from, f.id}
		ctx, cancel := context.WithCancel(base)
		rt.mu.Lock()
		rt.running[key] = cancel
		rt.mu.Unlock()
		go func() {
			defer lp.unclaim(f.sid)
			body := lp.exec(ctx, sess, req)
			rt.mu.Lock()
			delete(rt.running, key)
			rt.mu.Unlock()
			cancel()
			if body != nil {
				rt.answer(f.from, f.id, body)
			}
		}()
		return
	}
	select {
	case rt.gone <- struct{}{}:
	default:
		return
	}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		rt.answer(f.from, f.id, nil)
		<-rt.gone
	}()
}

// answer sends the body to answer request id to the node that forwarded it;
// an empty body means "gone".
func (rt *lpRouter) answer(node string, id uint64, body []byte) {
	b := make([]byte, 0, 9+len(body))
	b = append(b, lpWireVersion)
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, body...)
	if err := rt.send(context.Background(), node, lpEventReply, b); err != nil {
		rt.log.Warn("long-poll: cannot answer a forwarded request", "node", node, "err", err)
	}
}

// lpForward is a request forwarded to the node owning its session:
//
//	version(1) id(8) wait ms(4) flags(1) session id(16) len(from)(2) from len(mount)(2) mount body...
type lpForward struct {
	id      uint64
	wait    time.Duration
	flags   byte
	sid     lpID
	from    string // the node awaiting the answer
	mount   string
	body    []byte
	replies chan []byte // on the forwarding node only
}

func (f *lpForward) marshal() []byte {
	b := make([]byte, 0, 32+len(f.from)+len(f.mount)+len(f.body))
	b = append(b, lpWireVersion)
	b = binary.BigEndian.AppendUint64(b, f.id)
	b = binary.BigEndian.AppendUint32(b, uint32(min(f.wait.Milliseconds(), 1<<32-1)))
	b = append(b, f.flags)
	b = append(b, f.sid[:]...)
	b = lpAppendString(b, f.from)
	b = lpAppendString(b, f.mount)
	return append(b, f.body...)
}

func lpUnmarshalForward(p []byte) (*lpForward, bool) {
	const head = 1 + 8 + 4 + 1 + len(lpID{})
	if len(p) < head {
		return nil, false
	}
	f := &lpForward{
		id:    binary.BigEndian.Uint64(p[1:9]),
		wait:  time.Duration(binary.BigEndian.Uint32(p[9:13])) * time.Millisecond,
		flags: p[13],
	}
	copy(f.sid[:], p[14:head])
	var ok bool
	if f.from, p, ok = lpCutString(p[head:]); !ok {
		return nil, false
	}
	if f.mount, p, ok = lpCutString(p); !ok {
		return nil, false
	}
	f.body = p
	return f, true
}

func lpAppendString(b []byte, s string) []byte {
	s = s[:min(len(s), 0xffff)]
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func lpCutString(p []byte) (s string, rest []byte, ok bool) {
	if len(p) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p) < 2+n {
		return "", nil, false
	}
	return string(p[2 : 2+n]), p[2+n:], true
}
