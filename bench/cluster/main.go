// Command cluster-bench measures broadcast fan-out across Plume nodes with
// `plume bench`, the repository's load tool, which targets one URL:
//
//	cluster-bench node -addr 127.0.0.1:4401 -pubsub redis://127.0.0.1:6379/0 -node n1 -handoff /tmp/n1.sock
//	cluster-bench lb -addr 127.0.0.1:4400 -backends /tmp/n0.sock,/tmp/n1.sock,/tmp/n2.sock -spread 3000
//	plume bench -url ws://127.0.0.1:4400/socket -conns 3000 -dial-concurrency 1 ...
//	cluster-bench run ...   # all of the above, for every setup, as a table
//
// A node is `plume bench-server`'s "bench:*" channel (every "publish" is
// broadcast as "msg" to the topic's other subscribers) on an endpoint whose
// PubSub has a Redis or NATS adapter, or none. The lb spreads the bench's
// connections over the nodes without sitting in the data path: it accepts
// each TCP connection and hands the socket itself to a node over a Unix
// socket (SCM_RIGHTS), before a byte is read, so the node does the
// WebSocket handshake and everything after. Connection k goes to node
// k mod n while k < -spread, and to node 0 after: with `plume bench
// -dial-concurrency 1`, which dials the receivers in order and then the
// publishers, the receivers are spread round-robin and the publishers all
// land on node 0. Receiver i joins topic "bench:<i mod topics>", so with 3
// nodes and -topics 3 every node has one topic of its own (disjoint
// topics), and with -topics 1 every node has the topic.
//
// Each node counts the messages its adapter received from and sent to the
// broker, at GET /stats, so that a run shows what crosses the broker.
//
// This is a module of its own, kept out of the repository's workspace, so
// that the core module never depends on an adapter.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "node":
		return nodeMain(args[1:], stdout, stderr)
	case "lb":
		return lbMain(args[1:], stdout, stderr)
	case "run":
		return runMain(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "cluster-bench: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: cluster-bench <command> [flags]

commands:
  node  serve the bench channel on one node of a cluster (Redis, NATS or none)
  lb    spread connections over nodes by handing their sockets over
  run   start nodes and lb for each setup, run plume bench, print the figures
`)
}
