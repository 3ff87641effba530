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
//	-db           SQLite database file (default donations.db; ":memory:" keeps nothing)
//	-admin-token  the dashboard's token (default $ADMIN_TOKEN, else "admin_secret")
//	-refresh      how often watched campaigns get fresh totals (default 1m)
//	-phoenix      where phoenix.mjs is (default: found in node_modules)
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
	"github.com/plumehq/plume/examples/donations/store"
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
}

// parseFlags reads the command line; getenv supplies ADMIN_TOKEN.
func parseFlags(args []string, getenv func(string) string, errOut io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("donations", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4000", "listen `address` (port 0 picks a free port)")
	fs.StringVar(&cfg.DB, "db", "donations.db", "SQLite database `file`; \":memory:\" keeps nothing")
	envToken := getenv("ADMIN_TOKEN")
	def := envToken
	if def == "" {
		def = defaultAdminToken
	}
	fs.StringVar(&cfg.AdminToken, "admin-token", def, "the dashboard's admin `token` (default $ADMIN_TOKEN, else \"admin_secret\")")
	fs.DurationVar(&cfg.Refresh, "refresh", time.Minute, "how often campaigns with viewers get fresh totals (campaign_refreshed)")
	fs.StringVar(&cfg.Phoenix, "phoenix", "", "`path` of phoenix.mjs, or of the node_modules holding it (default: looked for from the working directory and the executable)")
	// Room for more: -pubsub and -node (another node's broker) plug in here
	// and in newPubSub.
	if err := fs.Parse(args); err != nil {
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

// newPubSub returns the PubSub the endpoint broadcasts on. It is
// single-node for now; a -pubsub flag would pick an adapter here
// (pubsub.New(pubsub.Options{NodeName: cfg.Node, Adapter: ...})).
func newPubSub(cfg config, log *slog.Logger) (*pubsub.PubSub, func(), error) {
	return pubsub.NewLocal(), func() {}, nil
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

	st, err := store.OpenSQLite(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()

	ep := plume.NewEndpoint(plume.Options{PubSub: ps, Logger: log})
	app := NewApp(ep, st, cfg.AdminToken)
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
	log.Info("listening", "url", url, "db", cfg.DB, "refresh", cfg.Refresh)
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
