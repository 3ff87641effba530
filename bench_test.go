package plume

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/plumehq/plume/wire"
)

// countTransport counts frames and drops them: it measures the runtime's
// own cost per delivery, without a network.
type countTransport struct {
	frames atomic.Int64
	bytes  atomic.Int64
}

func (t *countTransport) Name() string { return "bench" }
func (t *countTransport) Send(f wire.Frame) bool {
	t.frames.Add(1)
	t.bytes.Add(int64(len(f.Data)))
	return true
}
func (t *countTransport) Close(int, string) {}

type benchChannel struct{}

func (benchChannel) Join(*Channel, string, Payload) (any, error) { return nil, nil }

func benchSocket() *Socket {
	s := &Socket{MaxChannels: 1000}
	s.Channel("room:*", func() ChannelHandler { return benchChannel{} })
	return s
}

func joinAll(b *testing.B, ep *Endpoint, s *Socket, n int, topic string) ([]*Conn, *countTransport) {
	t := &countTransport{}
	conns := make([]*Conn, n)
	for i := range conns {
		c, err := ep.ServeTransport(context.Background(), s, t, nil, ConnectInfo{}, "2.0.0")
		if err != nil {
			b.Fatal(err)
		}
		if err := c.HandleFrame([]byte(`["1","1","`+topic+`","phx_join",{}]`), false); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	return conns, t
}

// BenchmarkBroadcast10kInProcess is one broadcast to 10,000 joined channels
// with in-process transports: the fan-out cost of the runtime (one encode,
// then a queue per subscriber), reported per delivery.
func BenchmarkBroadcast10kInProcess(b *testing.B) {
	ep := NewEndpoint(Options{})
	s := benchSocket()
	conns, t := joinAll(b, ep, s, 10000, "room:1")
	defer func() {
		for _, c := range conns {
			c.Terminate()
		}
	}()
	payload := map[string]any{"body": strings.Repeat("x", 64)}
	t.frames.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := ep.Broadcast(context.Background(), "room:1", "msg", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(t.frames.Load()), "ns/delivery")
}

// BenchmarkJoinLeave is one join and one leave on a topic that 1,000 other
// channels have joined.
func BenchmarkJoinLeave(b *testing.B) {
	ep := NewEndpoint(Options{})
	s := benchSocket()
	others, _ := joinAll(b, ep, s, 1000, "room:churn")
	defer func() {
		for _, c := range others {
			c.Terminate()
		}
	}()
	t := &countTransport{}
	c, _ := ep.ServeTransport(context.Background(), s, t, nil, ConnectInfo{}, "2.0.0")
	defer c.Terminate()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ref := fmt.Sprint(i)
		c.HandleFrame([]byte(`["`+ref+`","`+ref+`","room:churn","phx_join",{}]`), false)
		c.HandleFrame([]byte(`["`+ref+`","x`+ref+`","room:churn","phx_leave",{}]`), false)
		// The leave runs on the channel's mailbox; wait for it.
		for c.Channels() != 0 {
			runtime.Gosched()
		}
	}
}

// BenchmarkWebSocketFanout measures deliveries over real loopback WebSocket
// connections, with the writer coalescing every queued frame into one write
// (the default) and with one write per frame, to confirm the design choice.
func BenchmarkWebSocketFanout(b *testing.B) {
	for _, mode := range []struct {
		name     string
		coalesce bool
	}{{"coalesced", true}, {"write-per-frame", false}} {
		b.Run(mode.name, func(b *testing.B) {
			old := coalesceWrites
			coalesceWrites = mode.coalesce
			defer func() { coalesceWrites = old }()
			benchWebSocketFanout(b, 500)
		})
	}
}

func benchWebSocketFanout(b *testing.B, clients int) {
	ep := NewEndpoint(Options{})
	s := benchSocket()
	s.MaxQueueBytes = 64 << 20
	ep.Mount("/socket", s)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	var received atomic.Int64
	var wg sync.WaitGroup
	joined := make(chan struct{}, clients)
	for i := 0; i < clients; i++ {
		nc, _, _, err := ws.Dial(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		if err := writeClientText(nc, `["1","1","room:fan","phx_join",{}]`); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			br := bufio.NewReaderSize(nc, 64<<10)
			buf := make([]byte, 64<<10)
			for {
				h, err := ws.ReadHeader(br)
				if err != nil {
					return
				}
				if _, err := readFull(br, buf[:h.Length]); err != nil {
					return
				}
				if first {
					first = false
					joined <- struct{}{}
					continue
				}
				received.Add(1)
			}
		}()
	}
	for i := 0; i < clients; i++ {
		<-joined
	}
	payload := map[string]any{"body": strings.Repeat("x", 64)}
	const burst = 20
	b.ResetTimer()
	for b.Loop() {
		for j := 0; j < burst; j++ {
			ep.Broadcast(context.Background(), "room:fan", "msg", payload)
		}
	}
	want := int64(b.N) * burst * int64(clients)
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(received.Load())/b.Elapsed().Seconds(), "deliveries/s")
	if received.Load() < want {
		b.Fatalf("received %d of %d", received.Load(), want)
	}
}
