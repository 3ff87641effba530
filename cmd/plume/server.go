package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/presence"
)

// The server side a bench needs: a "bench:*" channel that accepts every
// join and, for each "publish" event, broadcasts the payload unchanged as
// "msg" to every other subscriber of the topic (BroadcastFrom, so the
// publisher does not receive its own messages). No reply is sent. Any
// Phoenix or Plume server with such a channel can be benchmarked.
//
// For `plume bench -mode presence` it also has a "presence:*" channel, the
// Phoenix Presence pattern: a join with {"user": id} is pushed
// "presence_state" and then tracked, so every subscriber of the topic gets
// a "presence_diff" with the new user.

// benchChannel is the "bench:*" channel.
type benchChannel struct{}

func (benchChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	return nil, nil
}

func (benchChannel) HandleIn(ch *plume.Channel, event string, p plume.Payload) (plume.Reply, error) {
	if event == "publish" {
		return plume.NoReply, ch.BroadcastFrom("msg", p)
	}
	return plume.ReplyError(map[string]string{"reason": "unknown event"}), nil
}

// presenceChannel is the "presence:*" channel.
type presenceChannel struct{ tr *presence.Tracker }

// presenceAfterJoin is sent by Join to the channel's HandleInfo, as
// Phoenix's send(self(), :after_join).
type presenceAfterJoin struct{ user string }

func (pc presenceChannel) Join(ch *plume.Channel, topic string, p plume.Payload) (any, error) {
	var params struct {
		User string `json:"user"`
	}
	if err := p.Decode(&params); err != nil || params.User == "" {
		return nil, errors.New("join with {\"user\": id}")
	}
	ch.Send(presenceAfterJoin{params.User})
	return nil, nil
}

func (pc presenceChannel) HandleInfo(ch *plume.Channel, msg any) error {
	m, ok := msg.(presenceAfterJoin)
	if !ok {
		return nil
	}
	if err := ch.Push(presence.StateEvent, pc.tr.List(ch.Topic())); err != nil {
		return err
	}
	_, err := pc.tr.Track(ch, m.user, map[string]any{})
	return err
}

// benchOptions are bench-server's settings.
type benchOptions struct {
	// PresenceCoalesce is the presence tracker's CoalesceWindow: zero
	// sends one presence_diff per join, as Phoenix does.
	PresenceCoalesce time.Duration
	// WriteTimeout is the socket's WriteTimeout (zero: Plume's default).
	WriteTimeout time.Duration
}

// benchEndpoint returns an endpoint with the bench socket at /socket, and
// a func that closes its presence tracker (after the endpoint's shutdown).
func benchEndpoint(logger *slog.Logger, o benchOptions) (*plume.Endpoint, func()) {
	sock := &plume.Socket{
		// The bench publishes flat out on request; let a receiver queue
		// more before it counts as slow.
		MaxQueueBytes: 8 << 20,
		WriteTimeout:  o.WriteTimeout,
	}
	ep := plume.NewEndpoint(plume.Options{Logger: logger, DrainInterval: 100 * time.Millisecond})
	tr := presence.New(ep, presence.Options{
		CoalesceWindow: o.PresenceCoalesce,
		Replication:    presence.Replication{Disabled: true}, // one node
	})
	sock.Channel("bench:*", func() plume.ChannelHandler { return benchChannel{} })
	sock.Channel("presence:*", func() plume.ChannelHandler { return presenceChannel{tr} })
	ep.Mount("/socket", sock)
	return ep, func() { tr.Close() }
}

// servePprof serves net/http/pprof on its own listener, so that profiling
// is opt-in and never reachable through the bench endpoint.
func servePprof(ln net.Listener, stderr io.Writer) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintln(stderr, "pprof:", err)
	}
}

// benchServerMain runs `plume bench-server`.
func benchServerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address (loopback only)")
	verbose := fs.Bool("v", false, "log connections and channel events")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060 (off when empty)")
	var o benchOptions
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 0, "a write blocked this long closes the connection (0: Plume's default, 10s)")
	fs.DurationVar(&o.PresenceCoalesce, "presence-coalesce", 0, "merge a presence topic's diffs within this window into one presence_diff (0: one per change, as Phoenix)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: plume bench-server [flags]\n\nServes a Plume endpoint at ws://ADDR/socket with a \"bench:*\" channel that\nbroadcasts every \"publish\" it receives as \"msg\" to the topic's other\nsubscribers, and a \"presence:*\" channel that tracks each joining user,\nfor `plume bench`.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if n, err := raiseFileLimit(); err == nil {
		fmt.Fprintf(stderr, "open files limit: %d\n", n)
	}
	for _, a := range []string{*addr, *pprofAddr} {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil || !isLoopbackHost(host) {
			fmt.Fprintf(stderr, "bench-server: %s is not a loopback address\n", a)
			return 2
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	ep, closePresence := benchEndpoint(logger, o)
	defer closePresence()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "bench-server:", err)
		return 1
	}
	if *pprofAddr != "" {
		pln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			fmt.Fprintln(stderr, "bench-server:", err)
			return 1
		}
		defer pln.Close()
		go servePprof(pln, stderr)
		fmt.Fprintf(stderr, "pprof: http://%s/debug/pprof/\n", pln.Addr())
	}
	srv := &http.Server{Handler: ep, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "plume bench-server: ws://%s/socket (pid %d)\n", ln.Addr(), os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "bench-server:", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ep.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "bench-server:", err)
	}
	return 0
}
