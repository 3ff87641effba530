package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/plumehq/plume/broadcastapi"
)

// runBroadcast runs `plume broadcast`: one message to a Plume server's
// broadcast API (package broadcastapi), signed with the shared secret so
// that the secret itself is never sent. It returns the exit code: 0 sent,
// 1 refused or failed, 2 bad usage.
func runBroadcast(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broadcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:4000/api/broadcast", "the broadcast API's URL")
	secret := fs.String("secret", "", "the API's shared secret (default $PLUME_BROADCAST_SECRET, which keeps it out of the process list)")
	topic := fs.String("topic", "", "topic to broadcast on, e.g. room:42 (required)")
	event := fs.String("event", "", "event name (required)")
	payload := fs.String("payload", "{}", "payload, a JSON object")
	bearer := fs.Bool("bearer", false, "send the secret as a bearer token instead of signing the request")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: plume broadcast -topic T -event E [-payload JSON] [flags]\n\n"+
			"Broadcasts one event to every client joined to a topic, on every node, through\n"+
			"a Plume server's broadcast API.\n\n"+
			"  plume broadcast -url http://127.0.0.1:4000/api/broadcast -secret S \\\n"+
			"      -topic room:42 -event new_msg -payload '{\"body\":\"hi\"}'\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "plume broadcast: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *secret == "" {
		*secret = os.Getenv("PLUME_BROADCAST_SECRET")
	}
	switch {
	case *secret == "":
		fmt.Fprintln(stderr, "plume broadcast: no secret: pass -secret or set PLUME_BROADCAST_SECRET")
		return 2
	case *topic == "" || *event == "":
		fmt.Fprintln(stderr, "plume broadcast: -topic and -event are required")
		return 2
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*payload), &obj); err != nil || obj == nil {
		fmt.Fprintf(stderr, "plume broadcast: -payload must be a JSON object: %s\n", *payload)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := &broadcastapi.Client{URL: *url, Secret: *secret, Bearer: *bearer}
	if err := c.Broadcast(ctx, *topic, *event, json.RawMessage(*payload)); err != nil {
		fmt.Fprintf(stderr, "plume broadcast: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "broadcast %s to %s\n", *event, *topic)
	return 0
}
