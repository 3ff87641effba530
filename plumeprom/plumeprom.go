// Package plumeprom exports a Plume endpoint's telemetry as Prometheus
// metrics: live gauges of connections, joined channels and presences, and
// counters and histograms of connects, joins, messages, pushes, broadcasts,
// slow clients and PubSub errors.
//
//	m, err := plumeprom.New(plumeprom.Options{}) // registers with prometheus.DefaultRegisterer
//	if err != nil { ... }
//	ep := plume.NewEndpoint(plume.Options{Telemetry: m})
//	http.Handle("/metrics", promhttp.Handler())
//
// # Cardinality
//
// Every label has a bounded set of values whatever clients send, so that a
// client cannot grow the number of series: channels are labelled by the
// route pattern they matched ("room:*", from Socket.Channel), never by topic,
// and by "unmatched" for joins whose topic matched no route; reasons are
// mapped onto small fixed sets (a join refused with a free-text error counts
// as "refused"); close codes outside 1000-1015 count as "other". Transport
// labels are the transports' names ("websocket", "longpoll").
//
// # Metrics
//
// With the default namespace "plume":
//
//	plume_connections{transport}                          gauge: open connections
//	plume_channels{route}                                 gauge: joined channels
//	plume_presences                                       gauge: tracked presence metas
//	plume_connects_total{transport}                       accepted connections
//	plume_connect_refusals_total{transport,reason}        vsn, origin, connect, draining, other
//	plume_disconnects_total{transport,code}               closed connections by close code
//	plume_channel_joins_total{route}                      successful joins
//	plume_channel_join_refusals_total{route,reason}       unmatched_topic, too_many_channels, join_crashed, unauthorized, refused
//	plume_channel_leaves_total{route}                     phx_leave from clients
//	plume_channel_terminations_total{route,reason}        left, closed, duplicate_join, draining, normal, crash, error, shutdown
//	plume_messages_in_total{route}                        client events handled
//	plume_received_bytes_total{route}                     payload bytes of client events
//	plume_pushes_total{route}                             pushes to one client
//	plume_sent_bytes_total                                payload bytes queued to clients (pushes, broadcast deliveries)
//	plume_broadcasts_total                                broadcasts dispatched on this node
//	plume_broadcast_deliveries_total                      local deliveries of broadcasts
//	plume_slow_client_disconnects_total{transport}        connections closed for an overflowing queue (1013)
//	plume_queue_high_water_total{transport}               outbound queues reaching a new high-water mark
//	plume_pubsub_errors_total{operation}                  PubSub adapter failures
//	plume_drained_connections_total                       connections closed by Endpoint.Shutdown
//	plume_connect_duration_seconds{transport}             histogram: Connect callbacks of accepted connections
//	plume_channel_join_duration_seconds{route}            histogram: Join callbacks, accepted or refused
//	plume_channel_handle_in_duration_seconds{route}       histogram: HandleIn callbacks
//	plume_broadcast_fanout_duration_seconds               histogram: local fan-out of one broadcast
package plumeprom

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plumehq/plume/telemetry"
)

// DefaultBuckets are the histogram buckets, in seconds, used when
// Options.Buckets is empty: channel callbacks and fan-outs usually take
// microseconds to milliseconds, below prometheus.DefBuckets' first bucket.
var DefaultBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Options configures [New]. The zero value registers metrics named plume_*
// with prometheus.DefaultRegisterer.
type Options struct {
	// Namespace prefixes every metric name; default "plume".
	Namespace string
	// Registerer receives the metrics; nil uses prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// ConstLabels are added to every metric.
	ConstLabels prometheus.Labels
	// Buckets are the duration histograms' buckets in seconds; default
	// DefaultBuckets.
	Buckets []float64
	// JoinRefusalReasons are join refusal reasons kept as label values, in
	// addition to the built-in ones: a Join that returns
	// errors.New("banned") counts as "banned" if "banned" is listed here,
	// and as "refused" otherwise. List fixed texts only, never text that
	// includes client input.
	JoinRefusalReasons []string
}

// Metrics is a telemetry.Handler that turns Plume events into Prometheus
// metrics, and a prometheus.Collector of those metrics. Pass it as
// plume.Options.Telemetry; one Metrics may serve several endpoints, whose
// numbers then add up.
type Metrics struct {
	joinReasons map[string]string

	connections *prometheus.GaugeVec
	channels    *prometheus.GaugeVec
	presences   prometheus.Gauge

	connects         *prometheus.CounterVec
	connectRefusals  *prometheus.CounterVec
	disconnects      *prometheus.CounterVec
	joins            *prometheus.CounterVec
	joinRefusals     *prometheus.CounterVec
	leaves           *prometheus.CounterVec
	terminations     *prometheus.CounterVec
	messagesIn       *prometheus.CounterVec
	bytesIn          *prometheus.CounterVec
	pushes           *prometheus.CounterVec
	bytesOut         prometheus.Counter
	broadcasts       prometheus.Counter
	deliveries       prometheus.Counter
	slowClients      *prometheus.CounterVec
	highWater        *prometheus.CounterVec
	pubsubErrors     *prometheus.CounterVec
	drained          prometheus.Counter
	connectDuration  *prometheus.HistogramVec
	joinDuration     *prometheus.HistogramVec
	handleInDuration *prometheus.HistogramVec
	fanoutDuration   prometheus.Observer

	collectors []prometheus.Collector
	// routes caches each route's series, so the hot paths (pushes,
	// messages) cost a map read and an atomic add. Routes come from
	// Socket.Channel calls, so the cache is bounded.
	routes sync.Map // string -> *routeSeries
}

// routeSeries are the series of one route label value.
type routeSeries struct {
	channels   prometheus.Gauge
	joins      prometheus.Counter
	leaves     prometheus.Counter
	messagesIn prometheus.Counter
	bytesIn    prometheus.Counter
	pushes     prometheus.Counter
	join       prometheus.Observer
	handleIn   prometheus.Observer
}

// New returns Metrics registered with opts.Registerer (or the default
// registerer). The error is the registerer's, e.g. when metrics of the same
// names are already registered there.
func New(opts Options) (*Metrics, error) {
	m := newMetrics(opts)
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

func newMetrics(opts Options) *Metrics {
	ns := opts.Namespace
	if ns == "" {
		ns = "plume"
	}
	buckets := opts.Buckets
	if len(buckets) == 0 {
		buckets = DefaultBuckets
	}
	m := &Metrics{joinReasons: map[string]string{
		"unmatched topic":          "unmatched_topic",
		"too many channels joined": "too_many_channels",
		"join crashed":             "join_crashed",
		"unauthorized":             "unauthorized",
	}}
	for _, r := range opts.JoinRefusalReasons {
		if _, builtin := m.joinReasons[r]; !builtin {
			m.joinReasons[r] = r
		}
	}
	add := func(c prometheus.Collector) { m.collectors = append(m.collectors, c) }
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help, ConstLabels: opts.ConstLabels}, labels)
		add(v)
		return v
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help, ConstLabels: opts.ConstLabels}, labels)
		add(v)
		return v
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, ConstLabels: opts.ConstLabels, Buckets: buckets}, labels)
		add(v)
		return v
	}

	m.connections = gauge("connections", "Open connections.", "transport")
	m.channels = gauge("channels", "Joined channels, by the route pattern their topic matched.", "route")
	m.presences = gauge("presences", "Tracked presence metas.").WithLabelValues()

	m.connects = counter("connects_total", "Connections accepted.", "transport")
	m.connectRefusals = counter("connect_refusals_total", "Connections refused, by reason (vsn, origin, connect, draining, other).", "transport", "reason")
	m.disconnects = counter("disconnects_total", "Connections closed, by WebSocket close code (none when unknown, other outside 1000-1015).", "transport", "code")
	m.joins = counter("channel_joins_total", "Channel joins accepted.", "route")
	m.joinRefusals = counter("channel_join_refusals_total", "Channel joins refused, by bounded reason.", "route", "reason")
	m.leaves = counter("channel_leaves_total", "Channels left by the client (phx_leave).", "route")
	m.terminations = counter("channel_terminations_total", "Channels stopped, by bounded reason.", "route", "reason")
	m.messagesIn = counter("messages_in_total", "Client events handled by channels.", "route")
	m.bytesIn = counter("received_bytes_total", "Payload bytes of client events handled by channels.", "route")
	m.pushes = counter("pushes_total", "Pushes from channels to their client.", "route")
	m.bytesOut = counter("sent_bytes_total", "Payload bytes queued to clients by pushes and broadcast deliveries.").WithLabelValues()
	m.broadcasts = counter("broadcasts_total", "Broadcasts dispatched on this node.").WithLabelValues()
	m.deliveries = counter("broadcast_deliveries_total", "Local deliveries of broadcasts (subscribers reached).").WithLabelValues()
	m.slowClients = counter("slow_client_disconnects_total", "Connections closed because their outbound queue overflowed.", "transport")
	m.highWater = counter("queue_high_water_total", "Outbound queues reaching a new high-water mark (each doubling from 64 KiB).", "transport")
	m.pubsubErrors = counter("pubsub_errors_total", "PubSub adapter failures, by operation.", "operation")
	m.drained = counter("drained_connections_total", "Connections closed by an endpoint shutdown's drain.").WithLabelValues()

	m.connectDuration = histogram("connect_duration_seconds", "Time in Connect callbacks of accepted connections.", "transport")
	m.joinDuration = histogram("channel_join_duration_seconds", "Time in Join callbacks, accepted or refused.", "route")
	m.handleInDuration = histogram("channel_handle_in_duration_seconds", "Time in HandleIn callbacks.", "route")
	m.fanoutDuration = histogram("broadcast_fanout_duration_seconds", "Time to deliver one broadcast to this node's subscribers.").WithLabelValues()
	return m
}

// Describe sends the descriptors of every metric.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect sends the current value of every series.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

// route returns the series of a route pattern; "" is "unmatched".
func (m *Metrics) route(pattern string) *routeSeries {
	if pattern == "" {
		pattern = "unmatched"
	}
	if s, ok := m.routes.Load(pattern); ok {
		return s.(*routeSeries)
	}
	s := &routeSeries{
		channels:   m.channels.WithLabelValues(pattern),
		joins:      m.joins.WithLabelValues(pattern),
		leaves:     m.leaves.WithLabelValues(pattern),
		messagesIn: m.messagesIn.WithLabelValues(pattern),
		bytesIn:    m.bytesIn.WithLabelValues(pattern),
		pushes:     m.pushes.WithLabelValues(pattern),
		join:       m.joinDuration.WithLabelValues(pattern),
		handleIn:   m.handleInDuration.WithLabelValues(pattern),
	}
	actual, _ := m.routes.LoadOrStore(pattern, s)
	return actual.(*routeSeries)
}

func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

// HandleEvent updates the metrics for one event.
func (m *Metrics) HandleEvent(e *telemetry.Event) {
	switch e.Kind {
	case telemetry.SocketConnected:
		m.connections.WithLabelValues(e.Transport).Inc()
		m.connects.WithLabelValues(e.Transport).Inc()
		m.connectDuration.WithLabelValues(e.Transport).Observe(e.Duration.Seconds())
	case telemetry.SocketRefused:
		m.connectRefusals.WithLabelValues(e.Transport, connectReason(e.Reason)).Inc()
	case telemetry.SocketClosed:
		m.connections.WithLabelValues(e.Transport).Dec()
		m.disconnects.WithLabelValues(e.Transport, closeCode(e.Code)).Inc()
	case telemetry.ChannelJoined:
		r := m.route(e.Route)
		r.channels.Inc()
		r.joins.Inc()
		r.join.Observe(e.Duration.Seconds())
	case telemetry.ChannelRefused:
		reason := m.joinReason(e.Reason)
		m.joinRefusals.WithLabelValues(routeLabel(e.Route), reason).Inc()
		if e.Route != "" && reason != "unmatched_topic" && reason != "too_many_channels" {
			// The others ran a Join callback.
			m.route(e.Route).join.Observe(e.Duration.Seconds())
		}
	case telemetry.ChannelLeft:
		m.route(e.Route).leaves.Inc()
	case telemetry.ChannelTerminated:
		m.route(e.Route).channels.Dec()
		m.terminations.WithLabelValues(routeLabel(e.Route), terminationReason(e.Reason)).Inc()
	case telemetry.MessageIn:
		r := m.route(e.Route)
		r.messagesIn.Inc()
		r.bytesIn.Add(float64(e.Bytes))
		r.handleIn.Observe(e.Duration.Seconds())
	case telemetry.Push:
		m.route(e.Route).pushes.Inc()
		m.bytesOut.Add(float64(e.Bytes))
	case telemetry.Broadcast:
		m.broadcasts.Inc()
		m.deliveries.Add(float64(e.Subscribers))
		m.bytesOut.Add(float64(e.Bytes) * float64(e.Subscribers))
		m.fanoutDuration.Observe(e.Duration.Seconds())
	case telemetry.SlowClient:
		m.slowClients.WithLabelValues(e.Transport).Inc()
	case telemetry.QueueHighWater:
		m.highWater.WithLabelValues(e.Transport).Inc()
	case telemetry.PubSubError:
		m.pubsubErrors.WithLabelValues(pubsubOperation(e.Reason)).Inc()
	case telemetry.PresenceJoin:
		m.presences.Add(float64(e.Count))
	case telemetry.PresenceLeave:
		m.presences.Sub(float64(e.Count))
	case telemetry.Drain:
		m.drained.Add(float64(e.Count))
	}
}

// joinReason bounds a join refusal reason: the built-in and configured
// reasons, else "refused".
func (m *Metrics) joinReason(reason string) string {
	if r, ok := m.joinReasons[reason]; ok {
		return r
	}
	return "refused"
}

func connectReason(reason string) string {
	switch reason {
	case "vsn", "origin", "connect", "draining":
		return reason
	}
	return "other"
}

func terminationReason(reason string) string {
	switch reason {
	case "left", "closed", "duplicate_join", "draining", "normal", "crash", "error":
		return reason
	}
	// A ShutdownError with the application's own reason.
	return "shutdown"
}

func pubsubOperation(op string) string {
	switch op {
	case "broadcast", "direct_broadcast", "subscribe", "unsubscribe", "start", "receive", "publish", "close":
		return op
	}
	return "other"
}

var closeCodes = func() [16]string {
	var s [16]string
	for i := range s {
		s[i] = strconv.Itoa(1000 + i)
	}
	return s
}()

// closeCode bounds a close code label: 1000-1015 as themselves, 0 as
// "none", anything else (clients may echo any code) as "other".
func closeCode(code int) string {
	switch {
	case code == 0:
		return "none"
	case code >= 1000 && code <= 1015:
		return closeCodes[code-1000]
	}
	return "other"
}
