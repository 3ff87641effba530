package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/nats"
	"github.com/plumehq/plume/pubsub/redis"
)

// benchChannel is plume bench-server's "bench:*" channel: every "publish"
// is broadcast unchanged as "msg" to the topic's other subscribers.
type benchChannel struct{}

func (benchChannel) Join(*plume.Channel, string, plume.Payload) (any, error) { return nil, nil }

func (benchChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event == "publish" {
		return plume.NoReply, ch.BroadcastFrom("msg", p)
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

// counting wraps an adapter to count the messages that cross the broker.
type counting struct {
	pubsub.Adapter
	in, out atomic.Int64
	// spent and slowest are the time Broadcast took (the publisher's
	// channel waits for it), in nanoseconds: total and longest.
	spent, slowest atomic.Int64
}

func (c *counting) Start(ctx context.Context, deliver func(*pubsub.Message)) error {
	return c.Adapter.Start(ctx, func(m *pubsub.Message) {
		c.in.Add(1)
		deliver(m)
	})
}

func (c *counting) Broadcast(ctx context.Context, m *pubsub.Message) error {
	c.out.Add(1)
	t0 := time.Now()
	err := c.Adapter.Broadcast(ctx, m)
	d := int64(time.Since(t0))
	c.spent.Add(d)
	for {
		s := c.slowest.Load()
		if d <= s || c.slowest.CompareAndSwap(s, d) {
			break
		}
	}
	return err
}

// nodeStats is GET /stats.
type nodeStats struct {
	Node        string  `json:"node"`
	Connections int     `json:"connections"`
	RemoteIn    int64   `json:"remote_in"`  // messages the adapter delivered from other nodes
	RemoteOut   int64   `json:"remote_out"` // broadcasts the adapter sent to the broker
	CPUSeconds  float64 `json:"cpu_seconds"`
	// BroadcastSeconds is the time spent in the adapter's Broadcast, in
	// all; BroadcastMaxMs the longest call.
	BroadcastSeconds float64 `json:"broadcast_seconds"`
	BroadcastMaxMs   float64 `json:"broadcast_max_ms"`
}

// newAdapter returns the adapter for a -pubsub URL ("" for none):
// redis://host:port/db or nats://host:port, with an optional "prefix"
// query parameter.
func newAdapter(raw, node string) (pubsub.Adapter, error) {
	switch {
	case raw == "":
		return nil, nil
	case strings.HasPrefix(raw, "redis://"):
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		o.NodeName = node
		return redis.New(o)
	case strings.HasPrefix(raw, "nats://"):
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		prefix := u.Query().Get("prefix")
		u.RawQuery = ""
		return nats.New(nats.Options{URL: u.String(), NodeName: node, Prefix: prefix})
	}
	return nil, fmt.Errorf("-pubsub %q: want redis://host:port/db or nats://host:port", raw)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// nodeMain runs `cluster-bench node`.
func nodeMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4401", "listen address")
	psURL := fs.String("pubsub", "", "redis://host:port/db or nats://host:port (optional ?prefix=); empty: this node only")
	name := fs.String("node", "", "node name (default hostname plus pid)")
	handoff := fs.String("handoff", "", "Unix socket path where the lb hands connections over (optional)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *name == "" {
		*name = pubsub.DefaultNodeName()
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "cluster-bench node:", err)
		return 1
	}
	var c *counting
	opts := pubsub.Options{NodeName: *name}
	a, err := newAdapter(*psURL, *name)
	if err != nil {
		return fail(err)
	}
	if a != nil {
		c = &counting{Adapter: a}
		opts.Adapter = c
	}
	ps, err := pubsub.New(opts)
	if err != nil {
		return fail(err)
	}
	defer ps.Close()

	ep := plume.NewEndpoint(plume.Options{PubSub: ps, DrainInterval: 100 * time.Millisecond})
	// As plume bench-server: the bench publishes flat out on request.
	sock := &plume.Socket{MaxQueueBytes: 8 << 20}
	sock.Channel("bench:*", func() plume.ChannelHandler { return benchChannel{} })
	ep.Mount("/socket", sock)
	mux := http.NewServeMux()
	mux.Handle("/socket/", ep)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		s := nodeStats{Node: *name, Connections: ep.Connections(), CPUSeconds: cpuSeconds()}
		if c != nil {
			s.RemoteIn, s.RemoteOut = c.in.Load(), c.out.Load()
			s.BroadcastSeconds = time.Duration(c.spent.Load()).Seconds()
			s.BroadcastMaxMs = float64(c.slowest.Load()) / 1e6
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if *handoff != "" {
		os.Remove(*handoff)
		hl, err := newHandoffListener(*handoff)
		if err != nil {
			return fail(err)
		}
		go func() { errc <- srv.Serve(hl) }()
	}
	fmt.Fprintf(stdout, "cluster-bench node %s: http://%s (pid %d)\n", *name, ln.Addr(), os.Getpid())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		return fail(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep.Shutdown(sctx)
	srv.Shutdown(sctx)
	return 0
}

// handoffListener is a net.Listener of the connections an lb hands over
// a Unix socket, as file descriptors (SCM_RIGHTS).
type handoffListener struct {
	ul    *net.UnixListener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(path string) (*handoffListener, error) {
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l := &handoffListener{ul: ul, conns: make(chan net.Conn, 1024), done: make(chan struct{})}
	go l.acceptLBs()
	return l, nil
}

func (l *handoffListener) acceptLBs() {
	for {
		uc, err := l.ul.AcceptUnix()
		if err != nil {
			return
		}
		go l.receive(uc)
	}
}

// receive reads handed-over descriptors from one lb.
func (l *handoffListener) receive(uc *net.UnixConn) {
	defer uc.Close()
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4))
	for {
		_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				f := os.NewFile(uintptr(fd), "handoff")
				c, err := net.FileConn(f)
				f.Close()
				if err != nil {
					continue
				}
				select {
				case l.conns <- c:
				case <-l.done:
					c.Close()
					return
				}
			}
		}
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done); l.ul.Close() })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.ul.Addr() }

var _ net.Listener = (*handoffListener)(nil)
