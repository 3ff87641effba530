// Command donations is Plume's worked example: a live donations page on the
// official phoenix JavaScript client, with a Go server behind it that
// follows the demo contract (shared/contract/donations.md) as a Phoenix app
// would.
//
// From the repository root:
//
//	npm ci                      # once: the phoenix client the pages load
//	go run ./examples/donations # then open the URL it prints
//
// Flags:
//
//	-addr         listen address (default 127.0.0.1:4000; port 0 picks one)
//	-db           SQLite database file (default donations.db; ":memory:" keeps nothing),
//	              or a postgres:// URL, which several nodes share
//	-admin-token  the dashboard's token (default $ADMIN_TOKEN, else "admin_secret")
//	-refresh      how often watched campaigns get fresh totals (default 1m)
//	-phoenix      where phoenix.mjs is (default: found in node_modules)
//	-pubsub       the broker of a cluster: redis://host:port/db or nats://host:port (default: none, one node)
//	-node         this node's name, unique in the cluster (default hostname plus pid)
//	-presence-down  how long a node may miss heartbeats before its users leave (default 30s)
//	-secret       signs the pages' user tokens (default $SECRET_KEY_BASE, else random per process)
//	-broadcast-secret  the /api/broadcast secret (default $BROADCAST_SECRET; unset: the API is off)
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
	"github.com/plumehq/plume/pubsub"
)

// defaultAdminToken is the contract's token when ADMIN_TOKEN is not set.
const defaultAdminToken = "admin_secret"

// shutdownTimeout bounds the drain on SIGINT or SIGTERM.
const shutdownTimeout = 15 * time.Second

// config is what the flags set.
type config struct {
	Addr       string
	DB         string
	AdminToken string
	// DefaultToken is set when neither -admin-token nor ADMIN_TOKEN gave
	// the token, so the well-known default is in use.
	DefaultToken bool
	Refresh      time.Duration
	Phoenix      string
	// Cluster: -pubsub, -node and -presence-down (cluster.go).
	PubSub       string
	Node         string
	PresenceDown time.Duration
	// Ops: -secret and -broadcast-secret (ops.go).
	Ops opsConfig
}

// parseFlags reads the command line; getenv supplies ADMIN_TOKEN.
func parseFlags(args []string, getenv func(string) string, errOut io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("donations", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4000", "listen `address` (port 0 picks a free port)")
	fs.StringVar(&cfg.DB, "db", "donations.db", "SQLite database `file` (\":memory:\" keeps nothing), or a postgres:// URL that several nodes share")
	envToken := getenv("ADMIN_TOKEN")
	def := envToken
	if def == "" {
		def = defaultAdminToken
	}
	fs.StringVar(&cfg.AdminToken, "admin-token", def, "the dashboard's admin `token` (default $ADMIN_TOKEN, else \"admin_secret\")")
	fs.DurationVar(&cfg.Refresh, "refresh", time.Minute, "how often campaigns with viewers get fresh totals (campaign_refreshed)")
	fs.StringVar(&cfg.Phoenix, "phoenix", "", "`path` of phoenix.mjs, or of the node_modules holding it (default: looked for from the working directory and the executable)")
	fs.StringVar(&cfg.PubSub, "pubsub", "", "`URL` of the cluster's broker: redis://host:port/db or nats://host:port (default: none, one node)")
	fs.StringVar(&cfg.Node, "node", "", "this node's `name`, unique in the cluster (default hostname plus pid)")
	fs.DurationVar(&cfg.PresenceDown, "presence-down", defaultPresenceDown, "how long another node may miss presence heartbeats before its users leave")
	cfg.Ops.register(fs)
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if err := cfg.Ops.validate(getenv); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "admin-token" })
	cfg.DefaultToken = !set && envToken == ""
	if cfg.AdminToken == "" {
		return config{}, errors.New("-admin-token must not be empty")
	}
	if cfg.Refresh <= 0 {
		return config{}, errors.New("-refresh must be positive")
	}
	if err := checkClusterFlags(&cfg); err != nil {
		return config{}, err
	}
	return cfg, nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "donations:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, log); err != nil {
		log.Error("donations: " + err.Error())
		os.Exit(1)
	}
}

// newPubSub returns the PubSub the endpoint broadcasts on: this node only,
// or the cluster that the -pubsub broker connects (cluster.go).
func newPubSub(cfg config, log *slog.Logger) (*pubsub.PubSub, func(), error) {
	a, err := newAdapter(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if a == nil {
		return pubsub.NewLocal(), func() {}, nil
	}
	ps, err := pubsub.New(pubsub.Options{Adapter: a})
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return ps, func() { ps.Close() }, nil
}

// run serves until ctx ends, then drains: the endpoint closes its
// connections (1012, so that clients reconnect elsewhere or later), then
// the HTTP server stops, then the store closes.
func run(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) error {
	if cfg.DefaultToken {
		log.Warn("ADMIN_TOKEN is not set: the dashboard accepts the well-known token \"admin_secret\"; set ADMIN_TOKEN or -admin-token")
	}
	ps, closePubSub, err := newPubSub(cfg, log)
	if err != nil {
		return err
	}
	defer closePubSub()

	clusterWarnings(cfg, log)
	st, err := newStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	ops, err := newOps(cfg.Ops, log)
	if err != nil {
		return err
	}
	ep := plume.NewEndpoint(plume.Options{PubSub: ps, Logger: log, Telemetry: ops.Metrics, LongPollSecret: longPollSecret(cfg)})
	app := newApp(ep, st, cfg.AdminToken, presenceOptions(cfg))
	app.useOps(ops)
	ep.Mount("/socket", app.Socket())
	phoenix := newPhoenixAsset(cfg.Phoenix, searchDirs(), log)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app.Handler(phoenix),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	refreshCtx, stopRefresh := context.WithCancel(context.Background())
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		app.RunRefresher(refreshCtx, cfg.Refresh)
	}()

	url := "http://" + ln.Addr().String() + "/"
	log.Info("listening", "url", url, "db", redactURL(cfg.DB), "node", ps.NodeName(), "pubsub", redactURL(cfg.PubSub), "refresh", cfg.Refresh)
	fmt.Fprintf(stdout, "Donations demo: open %s\n", url)

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining connections")
	case err := <-served:
		stopRefresh()
		<-refreshed
		return fmt.Errorf("http server: %w", err)
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := ep.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("drain: %w", err))
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		srv.Close()
	}
	stopRefresh()
	<-refreshed
	if err := app.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	log.Info("stopped")
	return errors.Join(errs...)
}
