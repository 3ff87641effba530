package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// lbMain runs `cluster-bench lb`: connection k goes to backend k mod n
// while k < spread, then to backend 0.
func lbMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4400", "listen address")
	backends := fs.String("backends", "", "comma-separated Unix socket paths of the nodes' -handoff")
	spread := fs.Int("spread", 0, "the first N connections go round-robin over the backends, the rest to the first")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "cluster-bench lb:", err)
		return 1
	}
	if *backends == "" {
		return fail(errors.New("no -backends"))
	}
	var ucs []*net.UnixConn
	for _, p := range strings.Split(*backends, ",") {
		uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			return fail(err)
		}
		defer uc.Close()
		ucs = append(ucs, uc)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "cluster-bench lb: ws://%s/socket over %d nodes (pid %d)\n", ln.Addr(), len(ucs), os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for k := 0; ; k++ {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			return fail(err)
		}
		b := 0
		if k < *spread {
			b = k % len(ucs)
		}
		if err := handOver(ucs[b], c.(*net.TCPConn)); err != nil {
			return fail(err)
		}
	}
}

// handOver sends c's socket to a node and closes this process's copy.
func handOver(uc *net.UnixConn, c *net.TCPConn) error {
	defer c.Close()
	f, err := c.File()
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, err = uc.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil)
	return err
}
