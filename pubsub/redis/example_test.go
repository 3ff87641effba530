package redis_test

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/redis"
)

// Each node of a cluster makes a PubSub on its own adapter, all pointed at
// the same Redis; broadcasts on any node then reach subscribers on every
// node.
func Example() {
	a, err := redis.New(redis.Options{
		URL:      "redis://127.0.0.1:6379/0",
		NodeName: "web-1",
		Logger:   slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		log.Fatal(err)
	}
	defer ps.Close()
	ep := plume.NewEndpoint(plume.Options{PubSub: ps})
	log.Fatal(http.ListenAndServe(":4000", ep))
}

// A -pubsub flag takes a Redis URL; "prefix" and "node" query parameters
// set the channel prefix and the node name.
func ExampleParseURL() {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	url := fs.String("pubsub", "", "Redis URL, e.g. redis://127.0.0.1:6379/0")
	fs.Parse([]string{"-pubsub", "redis://127.0.0.1:6379/0?prefix=demo&node=web-1"})
	o, err := redis.ParseURL(*url)
	if err != nil {
		log.Fatal(err)
	}
	// Then: a, err := redis.New(o)
	fmt.Println(o.Prefix, o.NodeName)
	// Output: demo web-1
}
