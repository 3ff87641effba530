package main

// Operations: signed user tokens on the socket (Phoenix's window.userToken
// pattern), Prometheus metrics at /metrics, the HTTP broadcast API at
// /api/broadcast, and health checks at /healthz and /readyz.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/broadcastapi"
	"github.com/plumehq/plume/plumeprom"
	"github.com/plumehq/plume/token"
)

const (
	// userTokenSalt is the salt of the pages' user tokens, as in Phoenix's
	// guides: Phoenix.Token.sign(conn, "user socket", user_id).
	userTokenSalt = "user socket"
	// userTokenMaxAge is how long a page's token opens sockets: two weeks,
	// the max_age of Phoenix's guides (1209600 seconds).
	userTokenMaxAge = 14 * 24 * time.Hour
	// maxUserIDLen bounds the user id a token may carry.
	maxUserIDLen = 100

	// userIDAssign is the connection assign holding the user id of a
	// verified token; channels read it rather than their join payload.
	userIDAssign = "user_id"

	secretEnv          = "SECRET_KEY_BASE"
	broadcastSecretEnv = "BROADCAST_SECRET"
)

// errUnauthorizedJoin refuses a join with {"reason": "unauthorized"} on the
// wire, as plume.RefuseJoin(map[string]string{"reason": "unauthorized"})
// would, but as an error whose text is "unauthorized", so that plumeprom
// counts the refusal under reason="unauthorized" (a JoinError's text is
// "join refused: map[...]", which plumeprom counts as "refused").
var errUnauthorizedJoin = errors.New("unauthorized")

// opsConfig is what the operations flags set.
type opsConfig struct {
	// Secret is the secret key base that signs the pages' user tokens
	// (Phoenix's secret_key_base). Empty: newOps makes a random one, which
	// lives as long as the process.
	Secret string
	// BroadcastSecret authenticates callers of /api/broadcast; empty turns
	// the API off.
	BroadcastSecret string
}

// register adds -secret and -broadcast-secret to fs. Their defaults come
// from the environment after parsing (validate), so that -h never prints a
// secret.
func (o *opsConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&o.Secret, "secret", "", "secret key base that signs the pages' user tokens, at least 20 bytes (default $"+secretEnv+
		", else a random one per process: tokens then survive no restart and work on no other node)")
	fs.StringVar(&o.BroadcastSecret, "broadcast-secret", "", "shared secret of the HTTP broadcast API at /api/broadcast (default $"+broadcastSecretEnv+
		"; without one the API is off)")
}

// validate fills in the defaults from the environment and checks the
// secrets; call it after parsing.
func (o *opsConfig) validate(getenv func(string) string) error {
	if o.Secret == "" {
		o.Secret = getenv(secretEnv)
	}
	if o.BroadcastSecret == "" {
		o.BroadcastSecret = getenv(broadcastSecretEnv)
	}
	if o.Secret != "" && len(o.Secret) < token.MinSecretKeyBase {
		return fmt.Errorf("-secret (or $%s) must be at least %d bytes", secretEnv, token.MinSecretKeyBase)
	}
	return nil
}

// ops is the operations side of a running demo.
type ops struct {
	cfg      opsConfig
	registry *prometheus.Registry
	// Metrics is the endpoint's telemetry handler: pass it as
	// plume.Options.Telemetry.
	Metrics *plumeprom.Metrics
	// broadcast is the broadcast API, nil when it is off; set by useOps.
	broadcast http.Handler
}

// newOps returns the operations of a demo configured by cfg (validated),
// with its own Prometheus registry: the endpoint's metrics plus the Go
// runtime's and the process's.
func newOps(cfg opsConfig, log *slog.Logger) (*ops, error) {
	if cfg.Secret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		cfg.Secret = base64.RawURLEncoding.EncodeToString(b)
		log.Warn("neither -secret nor " + secretEnv + " is set: the pages' user tokens are signed with a random secret, " +
			"so they stop working when the server restarts and on any other node; set " + secretEnv + " or -secret")
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	m, err := plumeprom.New(plumeprom.Options{Registerer: reg})
	if err != nil {
		return nil, err
	}
	if cfg.BroadcastSecret == "" {
		log.Info("the broadcast API is off: set " + broadcastSecretEnv + " or -broadcast-secret to serve it at /api/broadcast")
	}
	return &ops{cfg: cfg, registry: reg, Metrics: m}, nil
}

// useOps turns on the app's operations features: user tokens on the
// socket, and the routes mountOps adds. Call it before Socket and Handler.
func (a *App) useOps(o *ops) {
	if o.cfg.BroadcastSecret != "" {
		o.broadcast = broadcastapi.New(a.ep, broadcastapi.Options{Secret: o.cfg.BroadcastSecret})
	}
	a.ops = o
}

// mountOps adds the health checks, and with ops the metrics and the
// broadcast API, to mux.
func (a *App) mountOps(mux *http.ServeMux) {
	// Liveness stays 200 during a drain (the process must not be
	// restarted); readiness turns 503 as soon as Shutdown begins, so that
	// load balancers send new connections elsewhere.
	mux.Handle("/healthz", a.ep.LivenessHandler())
	mux.Handle("/readyz", a.ep.ReadinessHandler())
	if a.ops == nil {
		return
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.ops.registry, promhttp.HandlerOpts{}))
	if a.ops.broadcast != nil {
		mux.Handle("/api/broadcast", a.ops.broadcast)
	}
}

// signUserToken returns a token for userID, for the pages to open the
// socket with: Phoenix.Token.sign(conn, "user socket", user_id).
func (a *App) signUserToken(userID string, opts token.SignOptions) (string, error) {
	opts.MaxAge = userTokenMaxAge
	return token.Sign(a.ops.cfg.Secret, userTokenSalt, userID, opts)
}

// campaignPageData is the campaign page's template data: the campaign id,
// and with ops a fresh guest id and its signed token, which the page reads
// from <meta name="user-token"> (Phoenix's window.userToken; a meta tag
// because the Content-Security-Policy allows no inline script).
func (a *App) campaignPageData(r *http.Request) any {
	data := map[string]any{"ID": r.PathValue("id")}
	if a.ops == nil {
		return data
	}
	// A real app signs the id of the user its session cookie names. The
	// demo has no accounts: every page load gets a guest, which the tab
	// keeps across reloads (in sessionStorage).
	uid := fmt.Sprintf("guest-%04d", 1000+mrand.IntN(9000))
	tok, err := a.signUserToken(uid, token.SignOptions{})
	if err != nil {
		a.log.Error("signing a user token", "err", err)
		return data
	}
	data["UserID"] = uid
	data["UserToken"] = tok
	return data
}

// authenticate is the token half of the socket's Connect. A token (the
// phoenix.js authToken option, or else a "token" param) that verifies makes
// the connection that user's: socket id "user_socket:<id>" and the assign
// user_id. A token that does not verify refuses the connection with close
// code 4401 (the socket sets RefuseWithClose), so that the page stops
// retrying and says the session expired. Without a token, or without ops,
// it returns handled == false and Connect goes on as the contract says.
func (a *App) authenticate(c *plume.Conn) (handled bool, err error) {
	if a.ops == nil {
		return false, nil
	}
	tok := c.Info.AuthToken
	if tok == "" {
		p, present := c.Params["token"]
		if !present {
			return false, nil
		}
		if tok, _ = p.(string); tok == "" {
			return true, fmt.Errorf("invalid token: %w", plume.ErrUnauthorized)
		}
	}
	data, err := token.Verify(a.ops.cfg.Secret, userTokenSalt, tok, token.VerifyOptions{MaxAge: userTokenMaxAge})
	if errors.Is(err, token.ErrExpired) {
		return true, fmt.Errorf("token expired: %w", plume.ErrUnauthorized)
	}
	uid, ok := data.(string)
	if err != nil || !ok || uid == "" || len(uid) > maxUserIDLen {
		return true, fmt.Errorf("invalid token: %w", plume.ErrUnauthorized)
	}
	c.ID = userSocketID(uid)
	c.Assign(userIDAssign, uid)
	return true, nil
}

// verifiedUser returns the user id of the token the channel's connection
// was opened with, if any.
func verifiedUser(ch *plume.Channel) (string, bool) {
	uid, ok := ch.Assigns[userIDAssign].(string)
	return uid, ok && uid != ""
}
