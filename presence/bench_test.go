package presence_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/presence"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/wire"
)

// BenchmarkTrack measures tracks per second: into one topic (which grows
// to b.N presences) and spread over 1,000 topics from parallel goroutines,
// each with and without a subscriber (a subscriber makes every track
// encode and broadcast a diff), and with replication's bookkeeping on (the
// default) and off.
func BenchmarkTrack(b *testing.B) {
	for _, repl := range []bool{true, false} {
		for _, sub := range []bool{false, true} {
			opts := presence.Options{Replication: presence.Replication{Disabled: !repl}}
			name := fmt.Sprintf("subscriber=%v/replication=%v", sub, repl)
			b.Run("one-topic/"+name, func(b *testing.B) {
				ep := plume.NewEndpoint(plume.Options{})
				tr := presence.New(ep, opts)
				if sub {
					s := pubsub.Func(func(*pubsub.Message) {})
					ep.PubSub().Subscribe("room:1", s)
					defer ep.PubSub().Unsubscribe("room:1", s)
				}
				meta := map[string]any{"online_at": 1700000000}
				b.ReportAllocs()
				cpu := startCPU(b)
				for i := 0; i < b.N; i++ {
					if _, err := tr.TrackOwner(i, "room:1", "user", meta); err != nil {
						b.Fatal(err)
					}
				}
				tr.Close() // includes sending the diffs
				cpu.stop()
			})
			b.Run("many-topics/"+name, func(b *testing.B) {
				ep := plume.NewEndpoint(plume.Options{})
				tr := presence.New(ep, opts)
				const topics = 1000
				if sub {
					for i := 0; i < topics; i++ {
						ep.PubSub().Subscribe(fmt.Sprint("room:", i), pubsub.Func(func(*pubsub.Message) {}))
					}
				}
				meta := map[string]any{"online_at": 1700000000}
				var next atomic.Int64
				b.ReportAllocs()
				cpu := startCPU(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						if _, err := tr.TrackOwner(i, fmt.Sprint("room:", i%topics), "user", meta); err != nil {
							b.Fatal(err)
						}
					}
				})
				tr.Close()
				cpu.stop()
			})
		}
	}
}

// BenchmarkList measures List of a topic with 10,000 presences (one meta
// each), and GetByKey on it.
func BenchmarkList(b *testing.B) {
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{})
	defer tr.Close()
	for i := 0; i < 10000; i++ {
		key := fmt.Sprint("user", i)
		tr.TrackOwner(key, "room:1", key, map[string]any{"online_at": 1700000000})
	}
	b.Run("list-10k", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if len(tr.List("room:1")) != 10000 {
				b.Fatal("short list")
			}
		}
		cpu.stop()
	})
	b.Run("presence_state-10k", func(b *testing.B) {
		// List plus its JSON encoding, which Channel.Push does: what a
		// client joining a 10,000-user room costs.
		b.ReportAllocs()
		cpu := startCPU(b)
		var n int
		for b.Loop() {
			data, err := json.Marshal(tr.List("room:1"))
			if err != nil {
				b.Fatal(err)
			}
			n = len(data)
		}
		cpu.stop()
		b.ReportMetric(float64(n), "bytes")
	})
	b.Run("get-by-key", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if _, ok := tr.GetByKey("room:1", "user5000"); !ok {
				b.Fatal("missing")
			}
		}
		cpu.stop()
	})
}

// BenchmarkRoom10k measures what presence costs a 10,000-user room, with
// and without coalescing: the presence_diff frames and bytes (V2 text
// frames, WebSocket header included) that each subscriber receives, and the
// server CPU time spent tracking, encoding and fanning the diffs out to
// the 10,000 subscribers (which, as fastlane does, share one encoding per
// diff and queue it), while
//
//   - join: 10,000 users join over one second (a reconnect storm after a
//     deploy), and
//   - churn: with the 10,000 present, 2,000 changes arrive over two
//     seconds, a mix of leaves, rejoins and meta updates.
//
// Every subscriber receives the same frames, so the room as a whole sends
// 10,000 times the per-subscriber numbers. Run it with
//
//	go test -run '^$' -bench Room10k -benchtime 1x ./presence/
func BenchmarkRoom10k(b *testing.B) {
	for _, window := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond} {
		b.Run(fmt.Sprint("coalesce=", window), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				join, churn := roomScenario(b, window)
				b.ReportMetric(join.frames, "join-frames/sub")
				b.ReportMetric(join.bytes, "join-bytes/sub")
				b.ReportMetric(join.cpu.Seconds(), "join-cpu-s")
				b.ReportMetric(churn.frames, "churn-frames/sub")
				b.ReportMetric(churn.bytes, "churn-bytes/sub")
				b.ReportMetric(churn.cpu.Seconds(), "churn-cpu-s")
			}
		})
	}
}

type traffic struct {
	frames, bytes float64
	cpu           time.Duration
}

// roomSub is one subscriber of the room: it takes the diff's shared V2
// encoding, as fastlane does, and counts what it would send.
type roomSub struct {
	frames, bytes atomic.Int64
}

type v2key struct{}

func (s *roomSub) Deliver(m *pubsub.Message) {
	if m.Event != presence.DiffEvent {
		return
	}
	v, _ := m.Encoded(v2key{}, func() (any, error) {
		return wire.V2.AppendBroadcast(nil, m.Topic, m.Event, m.Payload, false)
	})
	n := len(v.(wire.Frame).Data)
	s.frames.Add(1)
	s.bytes.Add(int64(n + wsHeaderLen(n)))
}

func roomScenario(b *testing.B, window time.Duration) (join, churn traffic) {
	ep := plume.NewEndpoint(plume.Options{})
	tr := presence.New(ep, presence.Options{CoalesceWindow: window})
	const users, topic = 10000, "room:lobby"
	subs := make([]*roomSub, users)
	for i := range subs {
		subs[i] = &roomSub{}
		ep.PubSub().Subscribe(topic, subs[i])
	}
	defer func() {
		for _, s := range subs {
			ep.PubSub().Unsubscribe(topic, s)
		}
	}()
	meta := func(i int) map[string]any {
		return map[string]any{"online_at": 1700000000 + i, "device": "browser", "status": "online"}
	}
	// paced runs n operations evenly over d, in batches of one millisecond.
	paced := func(n int, d time.Duration, op func(i int)) {
		start := time.Now()
		perMs := n / int(d/time.Millisecond)
		for i := 0; i < n; i++ {
			op(i)
			if (i+1)%perMs == 0 {
				if wait := time.Duration((i+1)/perMs)*time.Millisecond - time.Since(start); wait > 0 {
					time.Sleep(wait)
				}
			}
		}
	}
	cpu0 := cpuTime()
	settle := func() traffic {
		// Wait for the diffs to reach every subscriber: without
		// coalescing the fan-out runs well behind the joins.
		time.Sleep(window)
		for last := int64(-1); ; {
			time.Sleep(100 * time.Millisecond)
			n := subs[0].frames.Load()
			if n == last && subs[len(subs)-1].frames.Load() == n {
				break
			}
			last = n
		}
		t := traffic{frames: float64(subs[0].frames.Load()), bytes: float64(subs[0].bytes.Load()), cpu: cpuTime() - cpu0}
		for _, s := range subs {
			if float64(s.frames.Swap(0)) != t.frames || float64(s.bytes.Swap(0)) != t.bytes {
				b.Fatal("subscribers received different diffs")
			}
		}
		cpu0 = cpuTime()
		return t
	}
	paced(users, time.Second, func(i int) {
		key := fmt.Sprint("user:", i)
		if _, err := tr.TrackOwner(key, topic, key, meta(i)); err != nil {
			b.Fatal(err)
		}
	})
	join = settle()
	paced(2000, 2*time.Second, func(i int) {
		key := fmt.Sprint("user:", (i*7919)%users)
		switch i % 4 {
		case 0: // leave
			tr.UntrackAll(key)
		case 1: // rejoin of the user who left just before
			prev := fmt.Sprint("user:", ((i-1)*7919)%users)
			tr.TrackOwner(prev, topic, prev, meta(i))
		default: // status change
			tr.UpdateOwner(key, topic, key, map[string]any{"status": fmt.Sprint("s", i)})
		}
	})
	churn = settle()
	tr.Close()
	return join, churn
}

func wsHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// cpuMeter reports the process CPU time (user + system, all goroutines,
// GC included) per operation, and the operations per CPU second. On a
// shared machine this is steadier than wall time.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) *cpuMeter {
	b.ResetTimer()
	return &cpuMeter{b: b, start: cpuTime()}
}

func (m *cpuMeter) stop() {
	used := cpuTime() - m.start
	m.b.ReportMetric(float64(used.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
	m.b.ReportMetric(float64(m.b.N)/used.Seconds(), "ops/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
