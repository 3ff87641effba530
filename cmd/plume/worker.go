package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// A worker drives a share of the bench's connections: receivers that join
// a topic and check every message they get, and publishers that push
// numbered, timestamped messages. One goroutine per connection reads; each
// publisher writes from its own goroutine; nothing runs per message.
//
// Workers speak a line protocol (JSON lines) with the coordinator, whether
// they run in the same process (over pipes) or as child processes (over
// stdin and stdout):
//
//	coordinator → worker: workerSpec
//	worker → coordinator: {"phase":"ready", ...}
//	coordinator → worker: {"go":true}
//	worker → coordinator: {"phase":"published","sent":{...}}
//	coordinator → worker: {"sent":{...}}      (every publisher's count)
//	worker → coordinator: {"phase":"drained"}
//	coordinator → worker: {"close":true}      (after reading server stats)
//	worker → coordinator: {"phase":"report","report":{...}}
//
// The connections are closed only after "close", so that the server's CPU
// for the publish phase does not include tearing them down.

// workerEnv, set to 1, makes the plume binary run as a bench worker.
const workerEnv = "PLUME_BENCH_WORKER"

// maxConnsPerProcess: a process may hold 20,000 files on this machine;
// keep room for the rest.
const maxConnsPerProcess = 19000

// connsPerSourceIP bounds the connections from one 127.0.0.x address,
// below the ~28,000 ephemeral ports of one source address.
const connsPerSourceIP = 20000

type workerSpec struct {
	Config config `json:"config"`
	Index  int    `json:"index"`
	First  int    `json:"first"` // index of the first receiver
	Count  int    `json:"count"` // receivers
	Pubs   []int  `json:"pubs"`  // publisher ids run here
	// SpreadSrc dials from 127.0.0.(1 + n/20000) for connection n.
	SpreadSrc bool `json:"spread_src"`
}

type workerMsg struct {
	Phase  string        `json:"phase"`
	Error  string        `json:"error,omitempty"`
	Joined int           `json:"joined,omitempty"`
	Sent   map[int]int64 `json:"sent,omitempty"`
	Report *workerReport `json:"report,omitempty"`
}

type coordMsg struct {
	Go    bool          `json:"go,omitempty"`
	Sent  map[int]int64 `json:"sent,omitempty"`
	Close bool          `json:"close,omitempty"`
}

type workerReport struct {
	Index          int            `json:"index"`
	Conns          int            `json:"conns"`
	Joined         int            `json:"joined"`
	DialErrors     int            `json:"dial_errors"`
	JoinErrors     int            `json:"join_errors"`
	Disconnects    int64          `json:"disconnects"`
	DisconnectedBy map[string]int `json:"disconnected_by,omitempty"`
	PublishErrors  int64          `json:"publish_errors"`
	ConnectPhaseNS int64          `json:"connect_phase_ns"`
	Connect        histSnapshot   `json:"connect"`
	Join           histSnapshot   `json:"join"`
	Latency        histSnapshot   `json:"latency"`
	Sent           map[int]int64  `json:"sent"`
	Got            map[int]int64  `json:"got"`       // unique messages per publisher, summed over receivers
	Receivers      map[int]int    `json:"receivers"` // joined receivers per topic
	Dup            int64          `json:"dup"`
	FirstSendNS    int64          `json:"first_send_ns"`
	LastSendNS     int64          `json:"last_send_ns"`
	LastRecvNS     int64          `json:"last_recv_ns"`

	// Presence mode.
	StartNS          int64        `json:"start_ns"` // connect phase began
	Complete         int          `json:"complete"` // receivers whose list was complete
	LastCompleteNS   int64        `json:"last_complete_ns"`
	PresenceComplete histSnapshot `json:"presence_complete"` // own join sent → list complete
}

// The payload template. Fields are fixed-width strings (JSON numbers may
// not have leading zeros) at fixed offsets, so a publisher patches them in
// a pre-built frame and a receiver reads them without a JSON decoder:
//
//	{"p":"00001","s":"0000000042","t":"1700000000000000000","x":"xxxx…"}
const (
	payloadHead = `{"p":"00000","s":"0000000000","t":"0000000000000000000","x":"`
	payloadTail = `"}`
	offPub      = 6
	lenPub      = 5
	offSeq      = 18
	lenSeq      = 10
	offTime     = 35
	lenTime     = 19
	minSize     = len(payloadHead) + len(payloadTail)
)

// presenceTopic is the topic every connection joins in presence mode, as
// user presenceUser(i).
const presenceTopic = "presence:0"

// presenceUser is connection i's user in presence mode: "u" and six
// digits, a string that no other part of a presence frame can look like
// (phx_refs are 16 characters, client ids are UUIDs), so a receiver finds
// the users in a frame without decoding it.
func presenceUser(i int) string { return fmt.Sprintf("u%06d", i) }

const maxPresenceUsers = 1_000_000

type worker struct {
	spec      workerSpec
	cfg       *config
	proto     wireProto
	marker    []byte
	presence  bool
	wsURL     string
	conns     []*bconn
	recvs     []*bconn
	pubs      []*publisher
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once

	connect, join, latency hist
	delivered              atomic.Int64
	disconnects            atomic.Int64
	reasonsMu              sync.Mutex
	reasons                map[string]int // disconnects by close code and reason
	publishErrors          atomic.Int64
	dialErrors, joinErrors atomic.Int64
	connectPhase           time.Duration

	// Presence mode.
	startNS          int64
	presenceSeen     atomic.Int64 // users known, summed over receivers
	complete         atomic.Int64
	lastCompleteNS   atomic.Int64
	presenceComplete hist
}

// bconn is one bench connection.
type bconn struct {
	w        *worker
	global   int // index over all connections, for the source address
	topic    int
	nc       net.Conn
	br       *bufio.Reader
	wmu      sync.Mutex
	mask     [4]byte
	receiver bool
	joinSent time.Time
	joined   chan error // one result
	isJoined bool       // a join reply came; read goroutine only
	joinOK   atomic.Bool
	live     atomic.Bool // dialled: nc is set
	done     chan struct{}

	// Receiver state, owned by the read goroutine; read after it ended.
	last     []int64 // last sequence per publisher of the topic (index pub/topics)
	got      []int64
	dup      int64
	lastRecv int64

	// Presence mode, owned by the read goroutine: the users this
	// connection knows to be present, as a bitmap.
	known    []uint64
	nKnown   int
	complete bool
}

type publisher struct {
	id    int
	c     *bconn
	frame []byte // the masked frame, fields to patch
	base  int    // offset of the payload's '{' in frame
	hlen  int    // header length
	sent  int64
	first int64
	last  int64
}

func newWorker(spec workerSpec) (*worker, error) {
	cfg := spec.Config
	proto, err := protoByName(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	u, err := proto.endpoint(cfg.URL)
	if err != nil {
		return nil, err
	}
	w := &worker{spec: spec, cfg: &spec.Config, proto: proto, marker: proto.marker(), presence: cfg.Mode == modePresence, wsURL: u}
	T := cfg.Topics
	for i := spec.First; i < spec.First+spec.Count; i++ {
		t := i % T
		n := pubsOnTopic(cfg.Publishers, T, t)
		c := &bconn{w: w, global: i, topic: t, receiver: true, last: make([]int64, n), got: make([]int64, n)}
		if w.presence {
			c.known = make([]uint64, (cfg.Conns+63)/64)
		}
		w.recvs = append(w.recvs, c)
		w.conns = append(w.conns, c)
	}
	for _, id := range spec.Pubs {
		c := &bconn{w: w, global: cfg.Conns + id, topic: id % T}
		w.pubs = append(w.pubs, &publisher{id: id, c: c})
		w.conns = append(w.conns, c)
	}
	return w, nil
}

// pubsOnTopic counts the publishers p with p % topics == t.
func pubsOnTopic(publishers, topics, t int) int {
	if t >= publishers {
		return 0
	}
	return (publishers-1-t)/topics + 1
}

// connectAll dials every connection and joins its topic, a bounded number
// of dials at a time.
func (w *worker) connectAll(ctx context.Context) int {
	start := time.Now()
	w.startNS = start.UnixNano()
	sem := make(chan struct{}, w.cfg.DialConcurrency)
	var joined atomic.Int64
	var wg sync.WaitGroup
	for _, c := range w.conns {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.dial(ctx, c)
			<-sem
			if err != nil {
				w.dialErrors.Add(1)
				return
			}
			select {
			case err := <-c.joined:
				if err != nil {
					w.joinErrors.Add(1)
					return
				}
				joined.Add(1)
			case <-ctx.Done():
				w.joinErrors.Add(1)
			}
		}()
	}
	wg.Wait()
	w.connectPhase = time.Since(start)
	return int(joined.Load())
}

func (w *worker) dial(ctx context.Context, c *bconn) error {
	d := ws.Dialer{Timeout: 10 * time.Second}
	if w.spec.SpreadSrc {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceIP(c.global)}}
		d.NetDial = nd.DialContext
	}
	t0 := time.Now()
	nc, br, _, err := d.Dial(ctx, w.wsURL)
	if err != nil {
		return err
	}
	w.connect.add(int64(time.Since(t0)))
	if br == nil {
		br = bufio.NewReaderSize(nc, 2048)
	} else {
		// Frames the server sent right behind the handshake wait in br.
		br = bufio.NewReaderSize(io.MultiReader(br, nc), 2048)
	}
	c.nc, c.br = nc, br
	c.mask = ws.NewMask()
	c.joined = make(chan error, 1)
	c.done = make(chan struct{})
	c.live.Store(true)
	w.wg.Add(1)
	go c.readLoop()
	c.joinSent = time.Now()
	if w.presence {
		return c.write(w.proto.join(presenceTopic, presenceUser(c.global)))
	}
	return c.write(w.proto.join(benchTopic(c.topic), ""))
}

func benchTopic(t int) string { return "bench:" + strconv.Itoa(t) }

// sourceIP spreads connections over 127.0.0.x source addresses.
func sourceIP(n int) net.IP { return net.IPv4(127, 0, 0, byte(1+n/connsPerSourceIP)) }

// write sends one text frame, masked as a client must.
func (c *bconn) write(body []byte) error {
	f := maskedFrame(ws.OpText, body, c.mask)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(f)
	return err
}

// maskedFrame builds a final, masked frame.
func maskedFrame(op ws.OpCode, body []byte, mask [4]byte) []byte {
	n := len(body)
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: mask, Length: int64(n)}
	var hdr bytes.Buffer
	ws.WriteHeader(&hdr, h)
	f := append(hdr.Bytes(), body...)
	ws.Cipher(f[hdr.Len():], mask, 0)
	return f
}

// readLoop reads until the connection ends: the join reply first, then
// messages.
func (c *bconn) readLoop() {
	w := c.w
	defer w.wg.Done()
	defer close(c.done)
	hdr := make([]byte, 2, ws.MaxHeaderSize-2)
	buf := make([]byte, 512)
	var reason string
	for {
		h, err := ws.ReadHeaderBuffer(c.br, hdr)
		if err != nil {
			reason = lostReason(err)
			break
		}
		if h.Length > 16<<20 {
			reason = "frame over 16 MiB"
			break
		}
		if int(h.Length) > cap(buf) {
			buf = make([]byte, h.Length)
		}
		data := buf[:h.Length]
		if _, err := io.ReadFull(c.br, data); err != nil {
			reason = lostReason(err)
			break
		}
		if h.OpCode == ws.OpClose {
			if h.Masked {
				ws.Cipher(data, h.Mask, 0)
			}
			code, text := ws.ParseCloseFrameData(data)
			reason = fmt.Sprintf("close %d %s", code, text)
			break
		}
		if h.OpCode == ws.OpText {
			c.handle(data)
		}
		if cap(buf) > 64<<10 {
			// Presence lists are large; do not keep their buffer.
			buf = make([]byte, 512)
		}
	}
	if !c.isJoined {
		select {
		case c.joined <- errors.New("connection closed before the join reply"):
		default:
		}
	}
	if !w.closed.Load() {
		w.disconnects.Add(1)
		w.noteDisconnect(reason)
	}
}

// lostReason names a read error for the report: the connection ended
// without a close frame.
func lostReason(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection lost (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection lost (reset)"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "connection lost (timeout)"
	}
	return "connection lost (" + err.Error() + ")"
}

// noteDisconnect counts a disconnect the bench did not ask for by reason,
// for the report; a few distinct reasons are kept.
func (w *worker) noteDisconnect(reason string) {
	w.reasonsMu.Lock()
	defer w.reasonsMu.Unlock()
	if w.reasons == nil {
		w.reasons = map[string]int{}
	}
	if _, ok := w.reasons[reason]; ok || len(w.reasons) < 8 {
		w.reasons[reason]++
	}
}

func (c *bconn) handle(data []byte) {
	w := c.w
	if pong := w.proto.pong(data); pong != nil {
		c.write(pong)
	}
	if !c.isJoined {
		ok, err := w.proto.joinReply(data)
		if !ok {
			return
		}
		c.isJoined = true
		if err != nil {
			c.joined <- err
			return
		}
		w.join.add(int64(time.Since(c.joinSent)))
		c.joinOK.Store(true)
		if f := w.proto.afterJoin(presenceTopic, w.presence); f != nil {
			if err := c.write(f); err != nil {
				c.joined <- err
				return
			}
		}
		c.joined <- nil
		// The frame may carry more messages (Centrifuge batches).
	}
	if w.presence {
		c.handlePresence(data)
		return
	}
	if !c.receiver {
		return
	}
	var now int64
	for off := 0; ; {
		i := bytes.Index(data[off:], w.marker)
		if i < 0 {
			return
		}
		off += i + len(w.marker)
		p := data[off-1:]
		if len(p) < minSize {
			return
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		pub := int(atoiFixed(p[offPub : offPub+lenPub]))
		seq := atoiFixed(p[offSeq : offSeq+lenSeq])
		ts := atoiFixed(p[offTime : offTime+lenTime])
		w.latency.add(now - ts)
		c.lastRecv = now
		li := pub / w.cfg.Topics
		if pub%w.cfg.Topics != c.topic || li >= len(c.last) {
			continue // not a publisher of this topic: ignore
		}
		if seq > c.last[li] {
			c.last[li] = seq
			c.got[li]++
			w.delivered.Add(1)
		} else {
			c.dup++
		}
	}
}

// handlePresence marks every user named in the frame as known: whether it
// is a presence list or a join, of either protocol.
func (c *bconn) handlePresence(data []byte) {
	w := c.w
	n := len(c.known) * 64
	added := 0
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte(`"u`))
		if i < 0 {
			break
		}
		k := off + i + 2
		off = k
		if k+7 > len(data) || data[k+6] != '"' || !allDigits(data[k:k+6]) {
			continue
		}
		off = k + 7
		u := int(atoiFixed(data[k : k+6]))
		if u >= n || u >= w.cfg.Conns || c.known[u/64]&(1<<(u%64)) != 0 {
			continue
		}
		c.known[u/64] |= 1 << (u % 64)
		c.nKnown++
		added++
	}
	if added == 0 {
		return
	}
	w.presenceSeen.Add(int64(added))
	if !c.complete && c.nKnown == w.cfg.Conns {
		c.complete = true
		now := time.Now()
		w.presenceComplete.add(int64(now.Sub(c.joinSent)))
		w.complete.Add(1)
		for {
			m := w.lastCompleteNS.Load()
			if now.UnixNano() <= m || w.lastCompleteNS.CompareAndSwap(m, now.UnixNano()) {
				break
			}
		}
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func atoiFixed(b []byte) int64 {
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	return n
}

// prepare builds the publisher's masked frame once.
func (p *publisher) prepare(size int) {
	payload := []byte(payloadHead)
	payload = append(payload, bytes.Repeat([]byte{'x'}, size-minSize)...)
	payload = append(payload, payloadTail...)
	putDigits(payload[offPub:offPub+lenPub], uint64(p.id))
	prefix, suffix := p.c.w.proto.publish(benchTopic(p.c.topic))
	body := append([]byte(prefix), payload...)
	body = append(body, suffix...)
	p.frame = maskedFrame(ws.OpText, body, p.c.mask)
	p.hlen = len(p.frame) - len(body)
	p.base = p.hlen + len(prefix)
}

func putDigits(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// patch writes v's digits into a masked copy of the frame at payload
// offset off.
func (p *publisher) patch(f []byte, off, width int, v uint64) {
	at := p.base + off
	mask := p.c.mask
	for i := width - 1; i >= 0; i-- {
		j := at + i
		f[j] = byte('0'+v%10) ^ mask[(j-p.hlen)&3]
		v /= 10
	}
}

// run publishes the configured messages at the configured rate, in
// batches written with one system call each, until done, the duration
// cap, or ctx.
func (p *publisher) run(ctx context.Context, start, deadline time.Time, rate float64, total int64) {
	w := p.c.w
	const maxBatch = 256
	buf := make([]byte, 0, maxBatch*len(p.frame))
	for p.sent < total {
		now := time.Now()
		if now.After(deadline) || ctx.Err() != nil {
			return
		}
		n := min(int64(64), total-p.sent)
		if rate > 0 {
			due := min(int64(now.Sub(start).Seconds()*rate)+1, total)
			n = min(due-p.sent, maxBatch)
			if n <= 0 {
				next := start.Add(time.Duration(float64(p.sent) / rate * float64(time.Second)))
				sleepCtx(ctx, min(time.Until(next), time.Until(deadline)))
				continue
			}
		}
		ts := time.Now().UnixNano()
		if p.first == 0 {
			p.first = ts
		}
		buf = buf[:0]
		for k := int64(0); k < n; k++ {
			o := len(buf)
			buf = append(buf, p.frame...)
			f := buf[o:]
			p.patch(f, offSeq, lenSeq, uint64(p.sent+k+1))
			p.patch(f, offTime, lenTime, uint64(ts))
		}
		p.c.wmu.Lock()
		p.c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := p.c.nc.Write(buf)
		p.c.wmu.Unlock()
		if err != nil {
			w.publishErrors.Add(1)
			return
		}
		p.sent += n
		p.last = time.Now().UnixNano()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// publish runs this worker's publishers and returns what each sent.
func (w *worker) publish(ctx context.Context) map[int]int64 {
	cfg := w.cfg
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	rate := 0.0
	if cfg.Rate > 0 {
		rate = cfg.Rate / float64(cfg.Publishers)
	}
	var wg sync.WaitGroup
	for _, p := range w.pubs {
		if p.c.nc == nil {
			continue // never connected
		}
		p.prepare(cfg.Size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(ctx, start, deadline, rate, int64(cfg.Messages))
		}()
	}
	wg.Wait()
	sent := map[int]int64{}
	for _, p := range w.pubs {
		sent[p.id] = p.sent
	}
	return sent
}

// drain waits until the receivers got every message sent, or until
// deliveries stop for quiet, or ctx. In presence mode, it waits until every
// receiver knows every user instead, or until no receiver learnt of a user
// for quiet.
func (w *worker) drain(ctx context.Context, sent map[int]int64, quiet time.Duration) {
	if w.presence {
		var joined int64
		for _, c := range w.recvs {
			if c.joinOK.Load() {
				joined++
			}
		}
		w.waitQuiet(ctx, quiet, func() (int64, bool) {
			return w.presenceSeen.Load(), w.complete.Load() >= joined
		})
		return
	}
	var expected int64
	for _, c := range w.recvs {
		if !c.joinOK.Load() {
			continue
		}
		for p, n := range sent {
			if p%w.cfg.Topics == c.topic {
				expected += n
			}
		}
	}
	w.waitQuiet(ctx, quiet, func() (int64, bool) {
		n := w.delivered.Load()
		return n, n >= expected
	})
}

// waitQuiet polls progress until it says done, or its count has not
// changed for quiet, or ctx.
func (w *worker) waitQuiet(ctx context.Context, quiet time.Duration, progress func() (n int64, done bool)) {
	lastN, lastChange := int64(-1), time.Now()
	for {
		n, done := progress()
		if done || ctx.Err() != nil {
			return
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
}

// heartbeat keeps idle connections alive past the server's idle timeout,
// for protocols where the client sends heartbeats.
func (w *worker) heartbeat(ctx context.Context) {
	hb := w.proto.heartbeat()
	if hb == nil {
		return
	}
	t := time.NewTicker(25 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range w.conns {
				if c.live.Load() {
					c.write(hb)
				}
			}
		}
	}
}

// closeAll closes every connection and waits for the readers.
func (w *worker) closeAll() {
	w.closeOnce.Do(w.doClose)
}

func (w *worker) doClose() {
	w.closed.Store(true)
	for _, c := range w.conns {
		if c.nc != nil {
			c.wmu.Lock()
			c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.nc.Write(maskedFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""), c.mask))
			c.wmu.Unlock()
			c.nc.Close()
		}
	}
	w.wg.Wait()
}

func (w *worker) report(joined int) *workerReport {
	r := &workerReport{
		Index:          w.spec.Index,
		Conns:          len(w.conns),
		Joined:         joined,
		DialErrors:     int(w.dialErrors.Load()),
		JoinErrors:     int(w.joinErrors.Load()),
		Disconnects:    w.disconnects.Load(),
		DisconnectedBy: w.reasons,
		PublishErrors:  w.publishErrors.Load(),
		ConnectPhaseNS: int64(w.connectPhase),
		Connect:        w.connect.snapshot(),
		Join:           w.join.snapshot(),
		Latency:        w.latency.snapshot(),
		Sent:           map[int]int64{},
		Got:            map[int]int64{},
		Receivers:      map[int]int{},

		StartNS:          w.startNS,
		Complete:         int(w.complete.Load()),
		LastCompleteNS:   w.lastCompleteNS.Load(),
		PresenceComplete: w.presenceComplete.snapshot(),
	}
	for _, p := range w.pubs {
		r.Sent[p.id] = p.sent
		if p.first != 0 && (r.FirstSendNS == 0 || p.first < r.FirstSendNS) {
			r.FirstSendNS = p.first
		}
		r.LastSendNS = max(r.LastSendNS, p.last)
	}
	for _, c := range w.recvs {
		if !c.joinOK.Load() {
			continue // counted as a dial or join error, not as missed messages
		}
		r.Receivers[c.topic]++
		for li, n := range c.got {
			r.Got[c.topic+li*w.cfg.Topics] += n
		}
		r.Dup += c.dup
		r.LastRecvNS = max(r.LastRecvNS, c.lastRecv)
	}
	return r
}

// workerMain runs one worker over the line protocol: in a child process on
// stdin and stdout, or in the coordinator's process over pipes.
func workerMain(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var spec workerSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("worker: reading spec: %w", err)
	}
	fail := func(err error) error {
		enc.Encode(workerMsg{Phase: "error", Error: err.Error()})
		return err
	}
	w, err := newWorker(spec)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, spec.Config.timeLimit())
	defer cancel()
	// Stop when the coordinator goes away.
	msgs := make(chan coordMsg)
	go func() {
		defer close(msgs)
		for {
			var m coordMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func() (coordMsg, bool) {
		select {
		case m, ok := <-msgs:
			return m, ok
		case <-ctx.Done():
			return coordMsg{}, false
		}
	}
	defer func() {
		cancel()
		w.closeAll()
	}()
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	// Heartbeats start with the first dial: a long connect phase must not
	// leave the first connections silent past the server's idle timeout.
	go w.heartbeat(hbCtx)
	joined := w.connectAll(ctx)
	if err := enc.Encode(workerMsg{Phase: "ready", Joined: joined}); err != nil {
		return err
	}
	if m, ok := next(); !ok || !m.Go {
		return errors.New("worker: coordinator went away before go")
	}
	sent := w.publish(ctx)
	if err := enc.Encode(workerMsg{Phase: "published", Sent: sent}); err != nil {
		return err
	}
	m, ok := next()
	if !ok {
		return errors.New("worker: coordinator went away before the totals")
	}
	w.drain(ctx, m.Sent, spec.Config.Quiet)
	if err := enc.Encode(workerMsg{Phase: "drained"}); err != nil {
		return err
	}
	if m, ok := next(); !ok || !m.Close {
		return errors.New("worker: coordinator went away before close")
	}
	stopHB()
	w.closeAll()
	return enc.Encode(workerMsg{Phase: "report", Report: w.report(joined)})
}
