// Command plume is Plume's command-line tool.
//
//	plume bench [flags]         load-test a Phoenix socket on this machine
//	plume bench-server [flags]  serve a Plume endpoint with a "bench:*" channel
//	plume broadcast [flags]     send one event through a server's broadcast API
//
// A typical run, in two terminals:
//
//	plume bench-server -addr 127.0.0.1:4000
//	plume bench -url ws://127.0.0.1:4000/socket -conns 10000 -topics 10 \
//	    -publishers 10 -rate 10000 -messages 10000 -pid $(pgrep -f 'plume bench-server')
//
// See `plume bench -h` for what is measured and how.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	if os.Getenv(workerEnv) == "1" {
		raiseFileLimit()
		if err := workerMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "bench":
		return benchMain(args[1:], stdout, stderr)
	case "bench-server":
		return benchServerMain(args[1:], stdout, stderr)
	case "broadcast":
		return runBroadcast(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "plume: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: plume <command> [flags]

commands:
  bench         load-test a Phoenix socket on this machine (plume bench -h)
  bench-server  serve a Plume endpoint with a "bench:*" channel for bench
  broadcast     send one event through a Plume server's broadcast API (plume broadcast -h)
`)
}
