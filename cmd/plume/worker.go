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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
//	worker → coordinator: {"phase":"report","report":{...}}

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
	Go   bool          `json:"go,omitempty"`
	Sent map[int]int64 `json:"sent,omitempty"`
}

type workerReport struct {
	Index          int           `json:"index"`
	Conns          int           `json:"conns"`
	Joined         int           `json:"joined"`
	DialErrors     int           `json:"dial_errors"`
	JoinErrors     int           `json:"join_errors"`
	Disconnects    int64         `json:"disconnects"`
	PublishErrors  int64         `json:"publish_errors"`
	ConnectPhaseNS int64         `json:"connect_phase_ns"`
	Connect        histSnapshot  `json:"connect"`
	Join           histSnapshot  `json:"join"`
	Latency        histSnapshot  `json:"latency"`
	Sent           map[int]int64 `json:"sent"`
	Got            map[int]int64 `json:"got"`       // unique messages per publisher, summed over receivers
	Receivers      map[int]int   `json:"receivers"` // joined receivers per topic
	Dup            int64         `json:"dup"`
	FirstSendNS    int64         `json:"first_send_ns"`
	LastSendNS     int64         `json:"last_send_ns"`
	LastRecvNS     int64         `json:"last_recv_ns"`
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

var msgMarker = []byte(`"msg",{`)

type worker struct {
	spec      workerSpec
	cfg       *config
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
	publishErrors          atomic.Int64
	dialErrors, joinErrors atomic.Int64
	connectPhase           time.Duration
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
	done     chan struct{}

	// Receiver state, owned by the read goroutine; read after it ended.
	last     []int64 // last sequence per publisher of the topic (index pub/topics)
	got      []int64
	dup      int64
	lastRecv int64
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
	u, err := socketURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	w := &worker{spec: spec, cfg: &spec.Config, wsURL: u}
	T := cfg.Topics
	for i := spec.First; i < spec.First+spec.Count; i++ {
		t := i % T
		n := pubsOnTopic(cfg.Publishers, T, t)
		c := &bconn{w: w, global: i, topic: t, receiver: true, last: make([]int64, n), got: make([]int64, n)}
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

// socketURL turns the socket URL into its WebSocket endpoint.
func socketURL(raw string) (string, error) {
	u, err := parseLoopbackURL(raw)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/websocket"
	u.RawQuery = "vsn=2.0.0"
	return u.String(), nil
}

// connectAll dials every connection and joins its topic, a bounded number
// of dials at a time.
func (w *worker) connectAll(ctx context.Context) int {
	start := time.Now()
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
	w.wg.Add(1)
	go c.readLoop()
	topic := "bench:" + strconv.Itoa(c.topic)
	c.joinSent = time.Now()
	return c.write([]byte(`["1","1",` + strconv.Quote(topic) + `,"phx_join",{}]`))
}

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
	for {
		h, err := ws.ReadHeaderBuffer(c.br, hdr)
		if err != nil {
			break
		}
		if h.Length > 16<<20 {
			break
		}
		if int(h.Length) > cap(buf) {
			buf = make([]byte, h.Length)
		}
		data := buf[:h.Length]
		if _, err := io.ReadFull(c.br, data); err != nil {
			break
		}
		if h.OpCode == ws.OpClose {
			break
		}
		if h.OpCode == ws.OpText {
			c.handle(data)
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
	}
}

func (c *bconn) handle(data []byte) {
	w := c.w
	if !c.isJoined {
		if bytes.Contains(data, []byte(`"phx_reply"`)) && bytes.HasPrefix(data, []byte(`["1","1",`)) {
			c.isJoined = true
			var err error
			if !bytes.Contains(data, []byte(`"status":"ok"`)) {
				err = fmt.Errorf("join refused: %s", data)
			} else {
				w.join.add(int64(time.Since(c.joinSent)))
				c.joinOK.Store(true)
			}
			c.joined <- err
		}
		return
	}
	if !c.receiver {
		return
	}
	i := bytes.Index(data, msgMarker)
	if i < 0 {
		return
	}
	p := data[i+len(msgMarker)-1:]
	if len(p) < minSize {
		return
	}
	now := time.Now().UnixNano()
	pub := int(atoiFixed(p[offPub : offPub+lenPub]))
	seq := atoiFixed(p[offSeq : offSeq+lenSeq])
	ts := atoiFixed(p[offTime : offTime+lenTime])
	w.latency.add(now - ts)
	c.lastRecv = now
	li := pub / w.cfg.Topics
	if pub%w.cfg.Topics != c.topic || li >= len(c.last) {
		return // not a publisher of this topic: ignore
	}
	if seq > c.last[li] {
		c.last[li] = seq
		c.got[li]++
		w.delivered.Add(1)
	} else {
		c.dup++
	}
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
	prefix := `["1",null,` + strconv.Quote("bench:"+strconv.Itoa(p.c.topic)) + `,"publish",`
	body := append([]byte(prefix), payload...)
	body = append(body, ']')
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
// deliveries stop for quiet, or ctx.
func (w *worker) drain(ctx context.Context, sent map[int]int64, quiet time.Duration) {
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
	lastN, lastChange := int64(-1), time.Now()
	for {
		n := w.delivered.Load()
		if n >= expected || ctx.Err() != nil {
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

// heartbeat keeps idle connections alive past the server's idle timeout.
func (w *worker) heartbeat(ctx context.Context) {
	t := time.NewTicker(25 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, c := range w.conns {
				if c.nc != nil {
					c.write([]byte(`[null,"hb","phoenix","heartbeat",{}]`))
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
		PublishErrors:  w.publishErrors.Load(),
		ConnectPhaseNS: int64(w.connectPhase),
		Connect:        w.connect.snapshot(),
		Join:           w.join.snapshot(),
		Latency:        w.latency.snapshot(),
		Sent:           map[int]int64{},
		Got:            map[int]int64{},
		Receivers:      map[int]int{},
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
	joined := w.connectAll(ctx)
	go w.heartbeat(hbCtx)
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
	stopHB()
	w.closeAll()
	return enc.Encode(workerMsg{Phase: "report", Report: w.report(joined)})
}
