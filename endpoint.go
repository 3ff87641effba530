package plume

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumehq/plume/pubsub"
	"github.com/plumehq/plume/telemetry"
)

// Options configures an [Endpoint]. The zero value is usable: an in-memory
// PubSub and a logger that discards.
type Options struct {
	// PubSub carries broadcasts; nil creates a single-node one.
	PubSub *pubsub.PubSub
	// Logger receives the endpoint's logs, including Phoenix-style lines
	// (CONNECTED TO socket, JOINED topic, HANDLED event INCOMING ON topic)
	// at the levels of telemetry.DefaultLevels; nil discards them.
	Logger *slog.Logger
	// LogLevels overrides the level of log lines per event kind
	// (telemetry.Off silences one).
	LogLevels map[telemetry.Kind]slog.Level
	// FilterParams names connect and join parameters whose values never
	// reach a log line, besides "password" and "token".
	FilterParams []string
	// Telemetry receives every event (connects, joins, messages, pushes,
	// broadcasts, slow clients, ...) for metrics; nil sends none.
	Telemetry telemetry.Handler
	// DrainBatchSize is how many connections Shutdown closes at a time;
	// default 10,000 (Phoenix's drainer batch_size).
	DrainBatchSize int
	// DrainInterval is the pause between drain batches; default 2s.
	DrainInterval time.Duration
	// LongPollSecret keys the HMAC that signs long-poll session tokens. Nil
	// generates a random key per Endpoint; nodes that share a secret accept
	// each other's tokens, which routing a request to the node that owns the
	// session needs. Use at least 32 random bytes.
	LongPollSecret []byte
}

// Endpoint serves sockets over HTTP and broadcasts to their channels from
// anywhere (Phoenix.Endpoint). It is an http.Handler: mount sockets on it
// and hand it to any router or server.
type Endpoint struct {
	pubsub *pubsub.PubSub
	log    *slog.Logger
	opts   Options

	mu       sync.RWMutex
	mounts   map[string]*Socket
	conns    map[*Conn]struct{}
	draining atomic.Bool
	lp       *longPoll
	// observe is the telemetry handler, logger included; nil when neither
	// a logger nor a handler is set, so hot paths skip building events.
	observe telemetry.Handler
}

// NewEndpoint returns an Endpoint.
func NewEndpoint(opts Options) *Endpoint {
	e := &Endpoint{
		pubsub: opts.PubSub,
		log:    opts.Logger,
		opts:   opts,
		mounts: make(map[string]*Socket),
		conns:  make(map[*Conn]struct{}),
	}
	if e.pubsub == nil {
		e.pubsub = pubsub.NewLocal()
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.lp = newLongPoll(e)
	var hs telemetry.Multi
	if opts.Logger != nil {
		hs = append(hs, telemetry.NewLogger(telemetry.LogOptions{Logger: opts.Logger, Levels: opts.LogLevels, FilterParams: opts.FilterParams}))
	}
	if opts.Telemetry != nil {
		hs = append(hs, opts.Telemetry)
	}
	switch len(hs) {
	case 0:
	case 1:
		e.observe = hs[0]
	default:
		e.observe = hs
	}
	return e
}

// emit sends an event to the telemetry handlers.
func (e *Endpoint) emit(ev *telemetry.Event) {
	if e.observe != nil {
		e.observe.HandleEvent(ev)
	}
}

// observing reports whether events are wanted, so callers can skip
// measuring.
func (e *Endpoint) observing() bool { return e.observe != nil }

// PubSub returns the endpoint's PubSub.
func (e *Endpoint) PubSub() *pubsub.PubSub { return e.pubsub }

// Logger returns the endpoint's logger.
func (e *Endpoint) Logger() *slog.Logger { return e.log }

// Mount serves s at path: WebSocket at path+"/websocket" and long-poll at
// path+"/longpoll", as Phoenix's socket "/socket", UserSocket.
func (e *Endpoint) Mount(path string, s *Socket) {
	path = "/" + strings.Trim(path, "/")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mounts[path] = s
}

// ServeHTTP serves the mounted sockets; other paths get 404.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mount, transport, ok := cutLast(r.URL.Path)
	if ok {
		e.mu.RLock()
		s := e.mounts[mount]
		e.mu.RUnlock()
		if s != nil {
			switch transport {
			case TransportWebSocket:
				e.serveWebSocket(w, r, s)
				return
			case TransportLongPoll:
				if !s.DisableLongPoll {
					e.lp.serve(w, r, s)
					return
				}
			}
		}
	}
	http.NotFound(w, r)
}

func cutLast(p string) (dir, last string, ok bool) {
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	dir = p[:i]
	if dir == "" {
		dir = "/"
	}
	return dir, p[i+1:], true
}

// Broadcast sends an event to every subscriber of topic on every node
// (Endpoint.broadcast/3). The payload must encode to a JSON object or be
// [Binary]. It never waits for slow clients.
func (e *Endpoint) Broadcast(ctx context.Context, topic, event string, payload any) error {
	return e.broadcastFrom(ctx, nil, topic, event, payload)
}

// LocalBroadcast is Broadcast to this node only (local_broadcast/3).
func (e *Endpoint) LocalBroadcast(topic, event string, payload any) error {
	m, err := newMessage(topic, event, payload)
	if err != nil {
		return err
	}
	e.pubsub.LocalBroadcast(m)
	return nil
}

// Disconnect closes every connection whose socket id is id, on every node,
// with 1001 so that clients reconnect (broadcasting "disconnect" on the id).
func (e *Endpoint) Disconnect(ctx context.Context, id string) error {
	return e.pubsub.Broadcast(ctx, &pubsub.Message{Topic: id, Event: "disconnect", Payload: []byte("{}")})
}

func (e *Endpoint) broadcastFrom(ctx context.Context, from *Channel, topic, event string, payload any) error {
	var start time.Time
	if e.observing() {
		start = time.Now()
	}
	m, err := newMessage(topic, event, payload)
	if err != nil {
		return err
	}
	var sub pubsub.Subscriber
	if from != nil {
		sub = from
	}
	var encoded time.Time
	if e.observing() {
		encoded = time.Now()
	}
	n, err := e.pubsub.Publish(ctx, sub, m)
	if e.observing() {
		e.emit(&telemetry.Event{Kind: telemetry.Broadcast, Topic: topic, EventName: event, Bytes: len(m.Payload),
			Subscribers: n, Encode: encoded.Sub(start), Duration: time.Since(encoded)})
		if err != nil {
			e.emit(&telemetry.Event{Kind: telemetry.PubSubError, Topic: topic, Reason: "broadcast", Err: err})
		}
	}
	return err
}

func newMessage(topic, event string, payload any) (*pubsub.Message, error) {
	data, bin, err := encodeObject(payload)
	if err != nil {
		return nil, err
	}
	return &pubsub.Message{Topic: topic, Event: event, Payload: data, Binary: bin}, nil
}

func (e *Endpoint) track(c *Conn) {
	e.mu.Lock()
	e.conns[c] = struct{}{}
	e.mu.Unlock()
}

func (e *Endpoint) untrack(c *Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

// Connections returns how many connections are open.
func (e *Endpoint) Connections() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.conns)
}

// Draining reports whether Shutdown has begun; readiness checks use it.
func (e *Endpoint) Draining() bool { return e.draining.Load() }

// Shutdown drains the endpoint: new connections are refused with 503, and
// open ones are closed in batches with code 1012 ("service restart") so that
// phoenix.js reconnects to another node; their channels stop with
// ErrDraining. It returns when every connection has closed, or with the
// context's error. Call it before http.Server.Shutdown.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.draining.Store(true)
	batch := e.opts.DrainBatchSize
	if batch <= 0 {
		batch = 10000
	}
	interval := e.opts.DrainInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	e.mu.RLock()
	conns := make([]*Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.RUnlock()
	for i := 0; i < len(conns); i += batch {
		if i > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		chunk := conns[i:min(i+batch, len(conns))]
		e.emit(&telemetry.Event{Kind: telemetry.Drain, Count: len(chunk)})
		for _, c := range chunk {
			c.drain()
		}
	}
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.lp.closeAll()
	return nil
}
