// Command centrifuge-bench-server is the peer that `plume bench` measures
// Plume against: a minimal server on github.com/centrifugal/centrifuge that
// does what `plume bench-server` does, so one load tool drives both.
//
//	centrifuge-bench-server -addr 127.0.0.1:4100
//	plume bench -protocol centrifuge -url ws://127.0.0.1:4100/connection/websocket ...
//
// What it serves, mirroring plume bench-server:
//
//   - anonymous connects are accepted (a connect command's data may carry
//     {"user":"..."} to name the user, which presence needs);
//   - every channel may be subscribed to;
//   - a client "publish" command to a channel is broadcast by the node to
//     the channel's subscribers (the publisher is not subscribed, so it gets
//     none back, as with Plume's BroadcastFrom);
//   - channels named "presence:*" have presence and join/leave pushes on,
//     and the "presence" command lists them.
//
// Settings are the ones closest to plume bench-server: JSON protocol, the
// in-memory broker with no history or recovery, an 8 MiB per-client queue
// (Plume's MaxQueueBytes), a 10 s write timeout (Plume's), and the
// memory-friendly WebSocket options
// Centrifugo's million-connection test used (pooled write buffers, small
// read buffer). See docs/benchmarks.md for the remaining differences.
//
// This is a separate module so that the core module never depends on
// centrifuge.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the server's knobs; the zero value of each flag's default is
// the configuration the comparison uses.
type options struct {
	addr            string
	queueBytes      int
	readBuffer      int
	writeBufferPool bool
	offReadLoop     bool
	writeTimeout    time.Duration
	presenceBatch   time.Duration
	pingInterval    time.Duration
	pongTimeout     time.Duration
	pprofAddr       string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("centrifuge-bench-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4100", "listen address (loopback only)")
	fs.IntVar(&o.queueBytes, "queue-bytes", 8<<20, "ClientQueueMaxSize: bytes a client may have queued before it is disconnected as slow (Plume's bench-server allows 8 MiB)")
	fs.IntVar(&o.readBuffer, "read-buffer", 1024, "WebSocket ReadBufferSize (0 = gorilla's 4096)")
	fs.BoolVar(&o.writeBufferPool, "write-buffer-pool", true, "UseWriteBufferPool: share write buffers between connections instead of one each")
	fs.BoolVar(&o.offReadLoop, "off-read-loop", false, "ProcessCommandsOffReadLoop: handle each frame on a short-lived goroutine (smaller idle stacks, one more handoff per frame)")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "WebSocket WriteTimeout: a write blocked this long disconnects the client (Plume's default is 10s, Centrifuge's 1s)")
	fs.DurationVar(&o.presenceBatch, "presence-batch", 0, "batch a presence channel's join/leave pushes per connection for this long (GetChannelBatchConfig MaxDelay; 0: off, the default)")
	fs.DurationVar(&o.pingInterval, "ping-interval", 0, "PingInterval: how often the server pings each client (0: Centrifuge's 25s)")
	fs.DurationVar(&o.pongTimeout, "pong-timeout", 0, "PongTimeout: disconnect a client that has not answered a ping within this (0: Centrifuge's 10s; must be under the ping interval)")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (off when empty)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if n, err := raiseFileLimit(); err == nil {
		fmt.Fprintf(stderr, "open files limit: %d\n", n)
	}
	for _, a := range []string{o.addr, o.pprofAddr} {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil || !isLoopback(host) {
			fmt.Fprintf(stderr, "centrifuge-bench-server: %s is not a loopback address\n", a)
			return 2
		}
	}
	node, handler, err := newServer(o)
	if err != nil {
		fmt.Fprintln(stderr, "centrifuge-bench-server:", err)
		return 1
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintln(stderr, "centrifuge-bench-server:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if o.pprofAddr != "" {
		go servePprof(o.pprofAddr, stderr)
	}
	fmt.Fprintf(stdout, "centrifuge bench-server: ws://%s/connection/websocket (pid %d)\n", ln.Addr(), os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "centrifuge-bench-server:", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "centrifuge-bench-server:", err)
	}
	return 0
}

// newServer builds the node and its WebSocket handler.
func newServer(o options) (*centrifuge.Node, http.Handler, error) {
	cfg := centrifuge.Config{
		LogLevel:           centrifuge.LogLevelError,
		LogHandler:         func(e centrifuge.LogEntry) { fmt.Fprintf(os.Stderr, "centrifuge: %s %v\n", e.Message, e.Fields) },
		ClientQueueMaxSize: o.queueBytes,
	}
	if o.presenceBatch > 0 {
		batch := centrifuge.ChannelBatchConfig{MaxDelay: o.presenceBatch}
		cfg.GetChannelBatchConfig = func(ch string) centrifuge.ChannelBatchConfig {
			if strings.HasPrefix(ch, "presence:") {
				return batch
			}
			return centrifuge.ChannelBatchConfig{}
		}
	}
	node, err := centrifuge.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		// Anonymous unless the connect data names a user.
		var d struct {
			User string `json:"user"`
		}
		if len(e.Data) > 0 {
			json.Unmarshal(e.Data, &d)
		}
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: d.User}}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			var opts centrifuge.SubscribeOptions
			if strings.HasPrefix(e.Channel, "presence:") {
				opts.EmitPresence = true
				opts.EmitJoinLeave = true
				opts.PushJoinLeave = true
			}
			cb(centrifuge.SubscribeReply{Options: opts}, nil)
		})
		// An empty reply: the node publishes the data to the channel.
		c.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			cb(centrifuge.PublishReply{}, nil)
		})
		c.OnPresence(func(e centrifuge.PresenceEvent, cb centrifuge.PresenceCallback) {
			cb(centrifuge.PresenceReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return nil, nil, err
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		CheckOrigin:                func(*http.Request) bool { return true },
		ReadBufferSize:             o.readBuffer,
		UseWriteBufferPool:         o.writeBufferPool,
		WriteTimeout:               o.writeTimeout,
		PingPongConfig:             centrifuge.PingPongConfig{PingInterval: o.pingInterval, PongTimeout: o.pongTimeout},
		ProcessCommandsOffReadLoop: o.offReadLoop,
	})
	return node, ws, nil
}

func servePprof(addr string, stderr io.Writer) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(stderr, "pprof:", err)
	}
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// raiseFileLimit raises the soft limit on open files to the hard limit.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}
