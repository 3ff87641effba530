package redis_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/redis"
)

func benchNode(b *testing.B, name, prefix string) *pubsub.PubSub {
	b.Helper()
	a, err := redis.New(redis.Options{Addr: realAddr, NodeName: name, Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ps.Close() })
	return ps
}

var benchPayload = []byte(`{"body":"hello","user":"alice","at":1700000000}`)

// BenchmarkBroadcast is one goroutine publishing through the adapter, each
// broadcast waiting for Redis's reply: bound by the round trip.
func BenchmarkBroadcast(b *testing.B) {
	needRedis(b)
	ps := benchNode(b, "n1", uniquePrefix())
	m := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: benchPayload}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := ps.Broadcast(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkBroadcastParallel is 16 goroutines per CPU publishing at once,
// which rueidis pipelines over one connection; flush=0 is the same with
// rueidis's MaxFlushDelay turned off, for comparison with the adapter's
// 100µs.
func BenchmarkBroadcastParallel(b *testing.B) {
	needRedis(b)
	for _, bc := range []struct {
		name  string
		flush time.Duration
	}{{"flush=100µs", redis.MaxFlushDelay}, {"flush=0", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{realAddr},
				DisableCache: true, MaxFlushDelay: bc.flush})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			a, err := redis.New(redis.Options{Client: c, NodeName: "n1", Prefix: uniquePrefix()})
			if err != nil {
				b.Fatal(err)
			}
			ps, err := pubsub.New(pubsub.Options{Adapter: a})
			if err != nil {
				b.Fatal(err)
			}
			defer ps.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(16)
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				m := &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: benchPayload}
				for pb.Next() {
					if err := ps.Broadcast(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/msg")
		})
	}
}

// cpuTime is the CPU time (user plus system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCrossNode10k sends 10,000 messages from one node and waits until
// a subscriber on another node has every one: end-to-end cross-node
// delivery. Sequential keeps one publisher's order; Parallel16 spreads the
// 10,000 over 16 publishing goroutines.
func BenchmarkCrossNode10k(b *testing.B) {
	needRedis(b)
	for _, bc := range []struct {
		name       string
		publishers int
	}{{"Sequential", 1}, {"Parallel16", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			const total = 10_000
			prefix := uniquePrefix()
			n1, n2 := benchNode(b, "n1", prefix), benchNode(b, "n2", prefix)
			var got atomic.Int64
			done := make(chan struct{}, 1)
			var target atomic.Int64
			n2.Subscribe("room", pubsub.Func(func(*pubsub.Message) {
				if got.Add(1) == target.Load() {
					done <- struct{}{}
				}
			}))
			// Wait for the subscription to be active.
			target.Store(1)
			for ready := false; !ready; {
				n1.Broadcast(context.Background(), &pubsub.Message{Topic: "room", Event: "probe", Payload: benchPayload})
				select {
				case <-done:
					ready = true
				case <-time.After(20 * time.Millisecond):
				}
			}
			time.Sleep(50 * time.Millisecond) // let stray probes land
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got.Store(0)
				target.Store(total)
				for len(done) > 0 {
					<-done
				}
				errs := make(chan error, bc.publishers)
				for p := 0; p < bc.publishers; p++ {
					go func() {
						m := &pubsub.Message{Topic: "room", Event: "new_msg", Payload: benchPayload}
						for i := 0; i < total/bc.publishers; i++ {
							if err := n1.Broadcast(ctx, m); err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}()
				}
				for p := 0; p < bc.publishers; p++ {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					b.Fatalf("only %d of %d messages arrived", got.Load(), total)
				}
			}
			b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/msg")
		})
	}
}
