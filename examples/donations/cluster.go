package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/presence"
	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/pubsub/nats"
	"github.com/plumehq/plume/pubsub/redis"
)

// Running several nodes: every node of a cluster is this binary started
// with the same -pubsub broker, the same PostgreSQL -db, the same -secret
// (or SECRET_KEY_BASE, see ops.go) and a -node name of its own.
// Broadcasts (donations, campaign updates, disconnects) reach the clients
// of every node through the broker, presences are replicated between the
// nodes' trackers as Phoenix.Tracker does, long-poll requests that land on
// another node are forwarded to the node holding the session, and all
// nodes read and write the same totals.

// defaultPresenceDown is Phoenix.Tracker's down_period.
const defaultPresenceDown = 30 * time.Second

// Bounds of -presence-down: Replication wants at least two heartbeats per
// down period, and the permdown period (20 minutes) must be longer.
const (
	minPresenceDown = 200 * time.Millisecond
	maxPresenceDown = 10 * time.Minute
)

// pubsubKind says which broker a -pubsub URL names: "" (none: one node),
// "redis" or "nats".
func pubsubKind(u string) (string, error) {
	switch {
	case u == "":
		return "", nil
	case strings.HasPrefix(u, "redis://"), strings.HasPrefix(u, "rediss://"), strings.HasPrefix(u, "unix://"):
		return "redis", nil
	case strings.HasPrefix(u, "nats://"), strings.HasPrefix(u, "tls://"):
		return "nats", nil
	}
	return "", fmt.Errorf("-pubsub %q: want redis://host:port/db or nats://host:port", u)
}

// checkClusterFlags validates the flags of this file once parsed.
func checkClusterFlags(cfg *config) error {
	if _, err := pubsubKind(cfg.PubSub); err != nil {
		return err
	}
	if cfg.PresenceDown < minPresenceDown || cfg.PresenceDown > maxPresenceDown {
		return fmt.Errorf("-presence-down must be between %v and %v", minPresenceDown, maxPresenceDown)
	}
	return nil
}

// newAdapter returns the broker adapter -pubsub names, nil for none. The
// node name is -node, else the URL's "node" parameter, else hostname plus
// pid. A "prefix" parameter namespaces the broker's channels or subjects
// (default "plume"), so that several clusters can share a broker.
func newAdapter(cfg config, log *slog.Logger) (pubsub.Adapter, error) {
	kind, err := pubsubKind(cfg.PubSub)
	if err != nil || kind == "" {
		return nil, err
	}
	u, err := url.Parse(cfg.PubSub)
	if err != nil {
		return nil, fmt.Errorf("-pubsub: %w", err)
	}
	q := u.Query()
	node := cfg.Node
	if node == "" {
		node = q.Get("node")
	}
	if node == "" {
		node = pubsub.DefaultNodeName()
	}
	switch kind {
	case "redis":
		o, err := redis.ParseURL(cfg.PubSub)
		if err != nil {
			return nil, err
		}
		o.NodeName, o.Logger = node, log
		a, err := redis.New(o)
		if err != nil {
			return nil, err
		}
		return a, nil
	default:
		// nats.go takes the server URL without our parameters.
		u.RawQuery = ""
		a, err := nats.New(nats.Options{URL: u.String(), NodeName: node, Prefix: q.Get("prefix")})
		if err != nil {
			return nil, fmt.Errorf("nats adapter: %w", err)
		}
		return a, nil
	}
}

// presenceOptions are the tracker's options: replicated with PermdownOnClose
// when there is a broker, so that a node stopped gracefully takes its users
// off the other nodes at once (a node that dies instead is found down
// after -presence-down), and on this node only otherwise.
func presenceOptions(cfg config) presence.Options {
	if cfg.PubSub == "" {
		return presence.Options{Replication: presence.Replication{Disabled: true}}
	}
	return presence.Options{Replication: replication(cfg.PresenceDown)}
}

// replication derives the heartbeat from the down period: Phoenix's 1.5 s
// period, or a sixth of a shorter down period, and an idle node's empty
// heartbeat at least every half down period, so that a node that is up is
// never taken for down between two heartbeats. 30 s (Phoenix's
// down_period) gives Phoenix's 1.5 s period.
func replication(down time.Duration) presence.Replication {
	period := min(1500*time.Millisecond, down/6)
	silent := max(1, min(10, int(down/(2*period))-1))
	return presence.Replication{
		BroadcastPeriod:  period,
		MaxSilentPeriods: silent,
		DownPeriod:       down,
		PermdownOnClose:  true,
	}
}

// longPollSecret is the endpoint's LongPollSecret: the secret key base,
// which every node of a cluster shares, so that any node verifies a
// long-poll token and forwards the request to the session's node (the
// endpoint derives its HMAC key from it with a label of its own). Nil, for
// no secret, is a random key per process.
func longPollSecret(cfg config) []byte {
	if cfg.Ops.Secret == "" {
		return nil
	}
	return []byte(cfg.Ops.Secret)
}

// newStore opens the store -db names: a PostgreSQL database for a
// postgres:// URL (the one several nodes share), else an SQLite file.
func newStore(ctx context.Context, cfg config) (store.Store, error) {
	if store.IsPostgresURL(cfg.DB) {
		return store.OpenPostgres(ctx, cfg.DB)
	}
	return store.OpenSQLite(ctx, cfg.DB)
}

// clusterWarnings logs what a cluster misconfigured this way would get
// wrong.
func clusterWarnings(cfg config, log *slog.Logger) {
	if cfg.PubSub == "" {
		return
	}
	if cfg.Ops.Secret == "" {
		log.Warn("-pubsub without -secret (or " + secretEnv + "): every node signs long-poll sessions with its own random key, so a long-poll request that reaches another node starts a new session; give all nodes the same secret")
	}
	if !store.IsPostgresURL(cfg.DB) {
		log.Warn("-pubsub with an SQLite -db: each node keeps totals of its own; give all nodes the same postgres:// -db")
	}
}

// redactURL hides the password of a URL, for the logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
