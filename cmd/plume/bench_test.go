package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
)

// TestMain lets the test binary act as a bench worker process, as the
// plume binary does, for the -workers test.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := workerMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func benchServer(t *testing.T) string {
	t.Helper()
	ep, closePresence := benchEndpoint(nil, benchOptions{})
	srv := httptest.NewServer(ep)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ep.Shutdown(ctx)
		srv.Close()
		closePresence()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket"
}

func testConfig(url string) config {
	return config{
		URL:             url,
		Conns:           50,
		Topics:          5,
		Publishers:      5,
		Rate:            500, // 100 messages per publisher: about 1 s
		Messages:        100,
		Size:            100,
		Duration:        10 * time.Second,
		Workers:         1,
		DialConcurrency: 16,
		Quiet:           3 * time.Second,
	}
}

func TestBenchInProcess(t *testing.T) {
	leakcheck.Check(t)
	cfg := testConfig(benchServer(t))
	cfg.PID = os.Getpid() // the server runs in this process
	r, err := runBench(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Messages
	if r.Connect.Joined != 55 || r.Connect.Attempted != 55 || r.Connect.DialErrors+r.Connect.JoinErrors != 0 {
		t.Fatalf("connect %+v", r.Connect)
	}
	// 5 publishers × 100 messages, each topic has 10 receivers.
	if m.Sent != 500 || m.Expected != 5000 || m.Delivered != 5000 || m.Missed != 0 || m.Duplicated != 0 {
		t.Fatalf("messages %+v", m)
	}
	if m.Disconnects != 0 || m.PublishErrors != 0 {
		t.Fatalf("errors %+v", m)
	}
	if r.LatencyMs.P50 <= 0 || r.LatencyMs.Max < r.LatencyMs.P99 || r.LatencyMs.P99 < r.LatencyMs.P50 {
		t.Fatalf("latency %+v", r.LatencyMs)
	}
	if m.DeliveriesPerSec <= 0 || m.Seconds < 0.5 {
		t.Fatalf("rate %+v: 100 messages at 100/s per publisher take about a second", m)
	}
	if r.Server == nil || r.Server.RSSAfterMB <= 0 || r.Server.CPUSeconds < 0 {
		t.Fatalf("server %+v", r.Server)
	}
	var table bytes.Buffer
	r.writeTable(&table)
	for _, want := range []string{"missed        0", "5000/5000 delivered", "latency ms", "server rss"} {
		if !strings.Contains(table.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, table.String())
		}
	}
	b, _ := json.Marshal(r)
	if !bytes.Contains(b, []byte(`"missed":0`)) {
		t.Fatalf("json %s", b)
	}
}

func TestBenchWorkerProcesses(t *testing.T) {
	leakcheck.Check(t)
	cfg := testConfig(benchServer(t))
	cfg.Workers = 2
	cfg.Conns, cfg.Topics, cfg.Publishers, cfg.Messages, cfg.Rate = 20, 2, 3, 50, 300
	r, err := runBench(context.Background(), cfg, childProcess)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Messages
	// Topic 0 has publishers 0 and 2, topic 1 has publisher 1; 10
	// receivers each.
	if r.Connect.Joined != 23 || m.Sent != 150 || m.Expected != 1500 || m.Delivered != 1500 || m.Missed != 0 || m.Duplicated != 0 {
		t.Fatalf("report %+v %+v", r.Connect, m)
	}
}

func TestBenchRefusals(t *testing.T) {
	base := testConfig("ws://127.0.0.1:4000/socket")
	for _, tc := range []struct {
		mod  func(*config)
		want string
	}{
		{func(c *config) { c.URL = "ws://example.com/socket" }, "non-loopback"},
		{func(c *config) { c.URL = "ws://10.0.0.1:4000/socket" }, "non-loopback"},
		{func(c *config) { c.Conns = 19500 }, "use -workers 2"},
		{func(c *config) { c.Conns, c.Workers, c.URL = 30000, 2, "ws://localhost:4000/socket" }, "IPv4 loopback"},
		{func(c *config) { c.Size = 10 }, "-size"},
		{func(c *config) { c.Duration = time.Hour }, "-duration"},
		{func(c *config) { c.Conns = maxConns + 1 }, "-conns"},
	} {
		c := base
		tc.mod(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	ok := base
	ok.Conns, ok.Workers = 30000, 2
	if err := ok.validate(); err != nil {
		t.Errorf("30,000 over 2 workers from 127.0.0.1: %v", err)
	}
	if got := sourceIP(0).String() + " " + sourceIP(19999).String() + " " + sourceIP(20000).String(); got != "127.0.0.1 127.0.0.1 127.0.0.2" {
		t.Errorf("source addresses %s", got)
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := int64(1); i <= 1000; i++ {
		h.add(i * int64(time.Microsecond))
	}
	s := h.snapshot()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := time.Duration(s.quantile(tc.q))
		if d := got - tc.want; d < -tc.want/25 || d > tc.want/25 {
			t.Errorf("q%.2f = %v, want %v ±4%%", tc.q, got, tc.want)
		}
	}
	if s.Max != int64(time.Millisecond) {
		t.Errorf("max %v", s.Max)
	}
	var m histSnapshot
	m.merge(s)
	m.merge(s)
	if m.count() != 2000 || m.quantile(0.5) != s.quantile(0.5) {
		t.Errorf("merge: %d %d", m.count(), m.quantile(0.5))
	}
	for _, v := range []int64{0, 1, 31, 32, 33, 1 << 40, 1<<62 + 12345} {
		if i := histBucket(v); i < 0 || i >= histBuckets || (v >= 32 && (histValue(i) < v-v/32 || histValue(i) > v+v/32)) {
			t.Errorf("bucket of %d: %d (value %d)", v, i, histValue(i))
		}
	}
}

func TestProcStat(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("this system has no /proc:", err)
	}
	ps, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ps.RSSKB <= 0 || ps.CPUSeconds < 0 {
		t.Fatalf("%+v", ps)
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("%d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"bench", "-url", "ws://example.com/socket"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "non-loopback") {
		t.Fatalf("%d %s", code, errb.String())
	}
}

// Connections above 20,000 come from 127.0.0.2 and up.
func TestSpreadSourceAddresses(t *testing.T) {
	leakcheck.Check(t)
	peers := make(chan string, 16)
	ep, closePresence := benchEndpoint(nil, benchOptions{})
	defer closePresence()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		peers <- host
		ep.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := testConfig("ws" + strings.TrimPrefix(srv.URL, "http") + "/socket")
	cfg.Conns, cfg.Topics, cfg.Publishers, cfg.Messages = 20003, 1, 1, 10
	spec := workerSpec{Config: cfg, First: 19999, Count: 4, Pubs: []int{0}, SpreadSrc: true}
	h, _ := inProcess(context.Background(), 0)
	h.enc.Encode(spec)
	if _, err := h.expect("ready"); err != nil {
		t.Fatal(err)
	}
	h.enc.Encode(coordMsg{Go: true})
	m, err := h.expect("published")
	if err != nil {
		t.Fatal(err)
	}
	h.enc.Encode(coordMsg{Sent: m.Sent})
	if _, err := h.expect("drained"); err != nil {
		t.Fatal(err)
	}
	h.enc.Encode(coordMsg{Close: true})
	m, err = h.expect("report")
	if err != nil {
		t.Fatal(err)
	}
	h.closeIn()
	h.wait()
	got := map[string]int{}
	for range 5 {
		got[<-peers]++
	}
	// Receivers 19999 and 20000..20002, and the publisher (20003).
	if got["127.0.0.1"] != 1 || got["127.0.0.2"] != 4 {
		t.Fatalf("peers %v", got)
	}
	if r := m.Report; r.Joined != 5 || r.Got[0] != 40 {
		t.Fatalf("report %+v", r)
	}
}

func TestBenchPresence(t *testing.T) {
	leakcheck.Check(t)
	cfg := testConfig(benchServer(t))
	cfg.Mode, cfg.Conns, cfg.Topics, cfg.Publishers = modePresence, 40, 1, 0
	cfg.PID = os.Getpid()
	r, err := runBench(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Connect.Joined != 40 || r.Connect.DialErrors+r.Connect.JoinErrors != 0 || r.Messages.Disconnects != 0 {
		t.Fatalf("connect %+v, %d disconnects", r.Connect, r.Messages.Disconnects)
	}
	p := r.Presence
	if p == nil || p.Users != 40 || p.Complete != 40 || p.AllCompleteSeconds <= 0 || p.CompleteMs.P50 <= 0 {
		t.Fatalf("presence %+v", p)
	}
	var table bytes.Buffer
	r.writeTable(&table)
	if !strings.Contains(table.String(), "complete lists       40/40") {
		t.Fatalf("table:\n%s", table.String())
	}
}

func TestPresenceModeRefusals(t *testing.T) {
	c := testConfig("ws://127.0.0.1:4000/socket")
	c.Mode = modePresence
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "no publishers") {
		t.Fatalf("presence with publishers: %v", err)
	}
	c.Topics, c.Publishers = 1, 0
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c.Mode = "nope"
	if err := c.validate(); err == nil {
		t.Fatal("unknown mode accepted")
	}
	c.Mode, c.Protocol = "", "mqtt"
	if err := c.validate(); err == nil {
		t.Fatal("unknown protocol accepted")
	}
}

// centrifugeWorker is a worker for frame tests: no connections.
func centrifugeWorker(t *testing.T, mode string, conns, topics, publishers int) *worker {
	t.Helper()
	cfg := testConfig("ws://127.0.0.1:4100/connection/websocket")
	cfg.Protocol, cfg.Mode, cfg.Conns, cfg.Topics, cfg.Publishers = "centrifuge", mode, conns, topics, publishers
	w, err := newWorker(workerSpec{Config: cfg, Count: conns})
	if err != nil {
		t.Fatal(err)
	}
	if w.wsURL != "ws://127.0.0.1:4100/connection/websocket" {
		t.Fatalf("url %s", w.wsURL)
	}
	return w
}

// Frames as centrifuge v0.40.1's server sends them (bench/centrifuge),
// several messages to a frame.
func TestCentrifugeFrames(t *testing.T) {
	w := centrifugeWorker(t, modeFanout, 1, 1, 2)
	c := w.recvs[0]
	c.joined = make(chan error, 1)
	c.joinSent = time.Now()
	c.handle([]byte(`{"id":1,"connect":{"client":"f853eafb-6925-4211-bdef-b219656ac341","ping":25,"pong":true}}`))
	if c.isJoined {
		t.Fatal("joined on the connect reply")
	}
	c.handle([]byte(`{"id":2,"subscribe":{}}`))
	if err := <-c.joined; err != nil || !c.joinOK.Load() {
		t.Fatalf("join: %v", err)
	}
	// Two publications of publisher 0 and one of publisher 1 in one frame.
	pub := func(p, seq int) string {
		b := []byte(payloadHead + "xx" + payloadTail)
		putDigits(b[offPub:offPub+lenPub], uint64(p))
		putDigits(b[offSeq:offSeq+lenSeq], uint64(seq))
		putDigits(b[offTime:offTime+lenTime], uint64(time.Now().UnixNano()))
		return `{"push":{"channel":"bench:0","pub":{"data":` + string(b) + `}}}`
	}
	c.handle([]byte(pub(0, 1) + "\n" + pub(1, 1) + "\n" + pub(0, 2)))
	c.handle([]byte(pub(0, 2)))
	if c.got[0] != 2 || c.got[1] != 1 || c.dup != 1 || w.delivered.Load() != 3 {
		t.Fatalf("got %v, dup %d, delivered %d", c.got, c.dup, w.delivered.Load())
	}

	refused := centrifugeWorker(t, modeFanout, 1, 1, 1).recvs[0]
	refused.joined = make(chan error, 1)
	refused.handle([]byte(`{"id":1,"connect":{"client":"x"}}` + "\n" + `{"id":2,"error":{"code":103,"message":"permission denied"}}`))
	if err := <-refused.joined; err == nil {
		t.Fatal("subscribe error taken for a join")
	}

	p := centrifugeProto{}
	for _, f := range []string{"{}", "{}\n" + pub(0, 3), pub(0, 3) + "\n{}", pub(0, 3) + "\n{}\n" + pub(0, 4)} {
		if p.pong([]byte(f)) == nil {
			t.Errorf("no pong for %q", f)
		}
	}
	for _, f := range []string{`{"id":1,"publish":{}}`, pub(0, 3)} {
		if p.pong([]byte(f)) != nil {
			t.Errorf("pong for %q", f)
		}
	}
}

// A presence list and join pushes, as Centrifuge and Plume send them.
func TestPresenceFrames(t *testing.T) {
	w := centrifugeWorker(t, modePresence, 3, 1, 0)
	c := w.recvs[0]
	c.handlePresence([]byte(`{"id":2,"subscribe":{}}` + "\n" + `{"push":{"channel":"presence:0","join":{"info":{"user":"u000000","client":"f853eafb-6925-4211-bdef-b219656ac341"}}}}`))
	c.handlePresence([]byte(`{"id":3,"presence":{"presence":{"f853eafb-6925-4211-bdef-b219656ac341":{"user":"u000000","client":"f853eafb-6925-4211-bdef-b219656ac341"},"ec7fb91f-cace-40e3-94df-41239840d8c1":{"user":"u000001","client":"ec7fb91f-cace-40e3-94df-41239840d8c1"}}}}`))
	if c.nKnown != 2 || c.complete {
		t.Fatalf("known %d, complete %v", c.nKnown, c.complete)
	}
	// Plume: a presence_diff (phx_refs are never mistaken for users).
	c.handlePresence([]byte(`[null,null,"presence:0","presence_diff",{"joins":{"u000002":{"metas":[{"phx_ref":"u12345678901234u"}]},"u9":{"metas":[]}},"leaves":{}}]`))
	if c.nKnown != 3 || !c.complete || w.complete.Load() != 1 || w.presenceSeen.Load() != 3 {
		t.Fatalf("known %d, complete %v", c.nKnown, c.complete)
	}
}
