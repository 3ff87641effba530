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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/plumehq/plume"
)

// The server side a bench needs: a "bench:*" channel that accepts every
// join and, for each "publish" event, broadcasts the payload unchanged as
// "msg" to every other subscriber of the topic (BroadcastFrom, so the
// publisher does not receive its own messages). No reply is sent. Any
// Phoenix or Plume server with such a channel can be benchmarked.

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

// benchEndpoint returns an endpoint with the bench socket at /socket.
func benchEndpoint(logger *slog.Logger) *plume.Endpoint {
	sock := &plume.Socket{
		// The bench publishes flat out on request; let a receiver queue
		// more before it counts as slow.
		MaxQueueBytes: 8 << 20,
	}
	sock.Channel("bench:*", func() plume.ChannelHandler { return benchChannel{} })
	ep := plume.NewEndpoint(plume.Options{Logger: logger, DrainInterval: 100 * time.Millisecond})
	ep.Mount("/socket", sock)
	return ep
}

// benchServerMain runs `plume bench-server`.
func benchServerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address (loopback only)")
	verbose := fs.Bool("v", false, "log connections and channel events")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: plume bench-server [flags]\n\nServes a Plume endpoint at ws://ADDR/socket with a \"bench:*\" channel that\nbroadcasts every \"publish\" it receives as \"msg\" to the topic's other\nsubscribers, for `plume bench`.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if n, err := raiseFileLimit(); err == nil {
		fmt.Fprintf(stderr, "open files limit: %d\n", n)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !isLoopbackHost(host) {
		fmt.Fprintf(stderr, "bench-server: %s is not a loopback address\n", *addr)
		return 2
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	ep := benchEndpoint(logger)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "bench-server:", err)
		return 1
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
