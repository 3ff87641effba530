package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// config is a bench run. Limits keep every run bounded in count and time.
type config struct {
	URL             string        `json:"url"`
	Protocol        string        `json:"protocol"` // "phoenix" (default) or "centrifuge"
	Mode            string        `json:"mode"`     // modeFanout (default) or modePresence
	Conns           int           `json:"conns"`
	Topics          int           `json:"topics"`
	Publishers      int           `json:"publishers"`
	Rate            float64       `json:"rate"`
	Messages        int           `json:"messages"`
	Size            int           `json:"size"`
	Duration        time.Duration `json:"duration"`
	Workers         int           `json:"workers"`
	DialConcurrency int           `json:"dial_concurrency"`
	Quiet           time.Duration `json:"quiet"`
	Hold            time.Duration `json:"hold"`
	PID             int           `json:"pid"`
	JSON            bool          `json:"-"`
}

const (
	maxConns      = 200_000
	maxPublishers = 1000
	maxMessages   = 10_000_000
	maxSize       = 64 << 10
	maxDuration   = 10 * time.Minute
	maxWorkers    = 16
	drainLimit    = 30 * time.Second
	spreadAbove   = 25_000
)

// Modes of a bench run.
const (
	// modeFanout: receivers join topics, publishers publish, receivers
	// count and time what they get.
	modeFanout = "fanout"
	// modePresence: every connection joins one presence topic as its own
	// user; measured is how long until every connection's list of present
	// users is complete. There are no publishers.
	modePresence = "presence"
)

// connectLimit bounds the connect phase: 10 s plus 2 ms per connection.
func (c *config) connectLimit() time.Duration {
	return min(10*time.Second+time.Duration(c.Conns+c.Publishers)*2*time.Millisecond, 10*time.Minute)
}

// timeLimit bounds a whole run.
func (c *config) timeLimit() time.Duration {
	return c.connectLimit() + c.Hold + c.Duration + drainLimit + 10*time.Second
}

func (c *config) total() int { return c.Conns + c.Publishers }

func (c *config) validate() error {
	if _, err := parseLoopbackURL(c.URL); err != nil {
		return err
	}
	if _, err := protoByName(c.Protocol); err != nil {
		return err
	}
	minPublishers := 1
	switch c.Mode {
	case "", modeFanout:
	case modePresence:
		minPublishers = 0
		if c.Topics != 1 || c.Publishers != 0 {
			return errors.New("-mode presence: one topic and no publishers")
		}
		if c.Conns > maxPresenceUsers {
			return fmt.Errorf("-mode presence: at most %d users", maxPresenceUsers)
		}
	default:
		return fmt.Errorf("-mode %q: want %s or %s", c.Mode, modeFanout, modePresence)
	}
	switch {
	case c.Conns < 1 || c.Conns > maxConns:
		return fmt.Errorf("-conns must be 1..%d", maxConns)
	case c.Topics < 1 || c.Topics > c.Conns:
		return errors.New("-topics must be 1..conns")
	case c.Publishers < minPublishers || c.Publishers > maxPublishers:
		return fmt.Errorf("-publishers must be 1..%d", maxPublishers)
	case c.Rate < 0:
		return errors.New("-rate must be >= 0 (0 is flat out)")
	case c.Messages < 1 || c.Messages > maxMessages:
		return fmt.Errorf("-messages must be 1..%d", maxMessages)
	case c.Size < minSize || c.Size > maxSize:
		return fmt.Errorf("-size must be %d..%d bytes", minSize, maxSize)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return fmt.Errorf("-duration must be in (0, %v]", maxDuration)
	case c.Workers < 1 || c.Workers > maxWorkers:
		return fmt.Errorf("-workers must be 1..%d", maxWorkers)
	case c.DialConcurrency < 1 || c.DialConcurrency > 1000:
		return errors.New("-dial-concurrency must be 1..1000")
	case c.Quiet <= 0 || c.Quiet > drainLimit:
		return fmt.Errorf("-quiet must be in (0, %v]", drainLimit)
	case c.Hold < 0 || c.Hold > maxDuration:
		return fmt.Errorf("-hold must be in [0, %v]", maxDuration)
	}
	if per := (c.total() + c.Workers - 1) / c.Workers; per > maxConnsPerProcess {
		return fmt.Errorf("%d connections per process: one process holds at most %d here (20,000 open files); use -workers %d",
			per, maxConnsPerProcess, (c.total()+maxConnsPerProcess-1)/maxConnsPerProcess)
	}
	if c.total() > spreadAbove {
		u, _ := parseLoopbackURL(c.URL)
		if ip := net.ParseIP(u.Hostname()); ip == nil || ip.To4() == nil {
			return errors.New("more than 25,000 connections are spread over 127.0.0.x source addresses: use an IPv4 loopback URL such as ws://127.0.0.1:4000/socket")
		}
	}
	return nil
}

// parseLoopbackURL parses the socket URL and refuses anything but
// loopback: the bench opens many connections as fast as it can.
func parseLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("-url %q: scheme must be ws or http", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-url %q: refusing a non-loopback host; the bench only targets this machine", raw)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Report is the result of a bench run.
type Report struct {
	URL        string  `json:"url"`
	Protocol   string  `json:"protocol"`
	Mode       string  `json:"mode"`
	Conns      int     `json:"conns"`
	Topics     int     `json:"topics"`
	Publishers int     `json:"publishers"`
	Workers    int     `json:"workers"`
	Size       int     `json:"size"`
	Rate       float64 `json:"rate"` // requested messages/s over all publishers; 0 = flat out

	HoldSeconds float64 `json:"hold_seconds,omitempty"`

	Connect struct {
		Attempted      int         `json:"attempted"`
		Joined         int         `json:"joined"`
		DialErrors     int         `json:"dial_errors"`
		JoinErrors     int         `json:"join_errors"`
		PhaseSeconds   float64     `json:"phase_seconds"`
		JoinedPerSec   float64     `json:"joined_per_sec"`
		HandshakeMs    Percentiles `json:"handshake_ms"`
		JoinMs         Percentiles `json:"join_ms"`
		SourceSpreaded bool        `json:"source_spread"`
	} `json:"connect"`

	Messages messageStats `json:"messages"`

	LatencyMs Percentiles `json:"latency_ms"`

	Presence *PresenceReport `json:"presence,omitempty"`

	Server *ServerReport `json:"server,omitempty"`
}

// messageStats is the publish phase of a report.
type messageStats struct {
	Sent             int64   `json:"sent"`
	Expected         int64   `json:"expected_deliveries"`
	Delivered        int64   `json:"delivered"`
	Missed           int64   `json:"missed"`
	Duplicated       int64   `json:"duplicated"`
	Seconds          float64 `json:"seconds"`         // first send to last delivery
	PublishSeconds   float64 `json:"publish_seconds"` // first send to last send
	SentPerSec       float64 `json:"sent_per_sec"`    // over PublishSeconds
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	PublishErrors    int64   `json:"publish_errors"`
	Disconnects      int64   `json:"disconnects"`
	// DisconnectedBy counts disconnects by the server's close code and
	// reason ("connection lost" without a close frame).
	DisconnectedBy map[string]int `json:"disconnected_by,omitempty"`
}

// PresenceReport is what -mode presence measures.
type PresenceReport struct {
	Users int `json:"users"`
	// Complete counts the connections whose list held every user.
	Complete int `json:"complete"`
	// AllCompleteSeconds is the time from the first dial until the last
	// connection's list was complete (0 if some never were).
	AllCompleteSeconds float64 `json:"all_complete_seconds"`
	// CompleteMs is, per connection, the time from sending its join until
	// its list was complete.
	CompleteMs Percentiles `json:"complete_ms"`
}

// Percentiles of a distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(s histSnapshot) Percentiles {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Percentiles{P50: ms(s.quantile(0.50)), P90: ms(s.quantile(0.90)), P99: ms(s.quantile(0.99)), Max: ms(s.Max)}
}

// ServerReport is what -pid measures of the server process.
type ServerReport struct {
	PID         int     `json:"pid"`
	RSSBeforeMB float64 `json:"rss_before_mb"`
	RSSAfterMB  float64 `json:"rss_connected_mb"`
	// RSSPerConnKB is the VmRSS growth from before connecting to after
	// every connection joined, divided by the connections.
	RSSPerConnKB float64 `json:"rss_per_conn_kb"`
	// With -hold: the same once the joined connections were held idle
	// (heartbeats only) for that long, when the connect phase's garbage
	// has been collected and its memory returned.
	RSSHeldMB        float64 `json:"rss_held_mb,omitempty"`
	RSSPerConnHeldKB float64 `json:"rss_per_conn_held_kb,omitempty"`
	// CPUSeconds is utime+stime over the publish phase (go to drained);
	// in presence mode, over the whole run (first dial to drained).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUSecondsPerMillion is CPUSeconds per million deliveries.
	CPUSecondsPerMillion float64 `json:"cpu_seconds_per_million_deliveries"`
}

// workerHandle is the coordinator's end of a worker.
type workerHandle struct {
	enc     *json.Encoder
	dec     *json.Decoder
	closeIn func() error
	wait    func() error
}

func (h *workerHandle) expect(phase string) (workerMsg, error) {
	var m workerMsg
	if err := h.dec.Decode(&m); err != nil {
		return m, fmt.Errorf("worker ended before %q: %w", phase, err)
	}
	if m.Phase == "error" {
		return m, errors.New(m.Error)
	}
	if m.Phase != phase {
		return m, fmt.Errorf("worker said %q, want %q", m.Phase, phase)
	}
	return m, nil
}

// spawnFunc starts worker i.
type spawnFunc func(ctx context.Context, i int) (*workerHandle, error)

// inProcess runs a worker on goroutines of this process, over pipes.
func inProcess(ctx context.Context, _ int) (*workerHandle, error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := workerMain(ctx, inR, outW)
		inR.Close()
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		if err == io.EOF {
			err = nil
		}
		done <- err
	}()
	return &workerHandle{
		enc:     json.NewEncoder(inW),
		dec:     json.NewDecoder(outR),
		closeIn: inW.Close,
		wait: func() error {
			err := <-done
			outR.Close()
			return err
		},
	}, nil
}

// childProcess runs a worker as a child process: this binary again, with
// PLUME_BENCH_WORKER=1. Its stderr is ours.
func childProcess(ctx context.Context, _ int) (*workerHandle, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &workerHandle{enc: json.NewEncoder(in), dec: json.NewDecoder(out), closeIn: in.Close, wait: cmd.Wait}, nil
}

// runBench runs a bench: it starts the workers (in this process when there
// is one, else as child processes), connects, publishes, drains and
// aggregates their reports.
func runBench(ctx context.Context, cfg config, spawn spawnFunc) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if spawn == nil {
		spawn = inProcess
		if cfg.Workers > 1 {
			spawn = childProcess
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeLimit())
	defer cancel()
	var before procStat
	if cfg.PID > 0 {
		var err error
		if before, err = readProcStat(cfg.PID); err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
	}
	var handles []*workerHandle
	defer func() {
		for _, h := range handles {
			h.closeIn()
		}
		for _, h := range handles {
			h.wait()
		}
	}()
	spread := cfg.total() > spreadAbove
	for i := range cfg.Workers {
		spec := workerSpec{Config: cfg, Index: i, SpreadSrc: spread}
		spec.First = i * cfg.Conns / cfg.Workers
		spec.Count = (i+1)*cfg.Conns/cfg.Workers - spec.First
		for p := i; p < cfg.Publishers; p += cfg.Workers {
			spec.Pubs = append(spec.Pubs, p)
		}
		h, err := spawn(ctx, i)
		if err != nil {
			return nil, err
		}
		handles = append(handles, h)
		if err := h.enc.Encode(spec); err != nil {
			return nil, err
		}
	}
	for _, h := range handles {
		if _, err := h.expect("ready"); err != nil {
			return nil, err
		}
	}
	var connected, held procStat
	if cfg.PID > 0 {
		connected, _ = readProcStat(cfg.PID)
	}
	if cfg.Hold > 0 {
		// Workers keep heartbeating meanwhile.
		t := time.NewTimer(cfg.Hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		if cfg.PID > 0 {
			held, _ = readProcStat(cfg.PID)
			// CPU is counted from here: the publish phase.
			connected.CPUSeconds = held.CPUSeconds
		}
	}
	for _, h := range handles {
		if err := h.enc.Encode(coordMsg{Go: true}); err != nil {
			return nil, err
		}
	}
	sent := map[int]int64{}
	for _, h := range handles {
		m, err := h.expect("published")
		if err != nil {
			return nil, err
		}
		for p, n := range m.Sent {
			sent[p] = n
		}
	}
	for _, h := range handles {
		if err := h.enc.Encode(coordMsg{Sent: sent}); err != nil {
			return nil, err
		}
	}
	for _, h := range handles {
		if _, err := h.expect("drained"); err != nil {
			return nil, err
		}
	}
	var after procStat
	if cfg.PID > 0 {
		after, _ = readProcStat(cfg.PID)
	}
	for _, h := range handles {
		if err := h.enc.Encode(coordMsg{Close: true}); err != nil {
			return nil, err
		}
	}
	var reports []*workerReport
	for _, h := range handles {
		m, err := h.expect("report")
		if err != nil {
			return nil, err
		}
		reports = append(reports, m.Report)
	}
	r := aggregate(cfg, reports, sent)
	r.Connect.SourceSpreaded = spread
	r.HoldSeconds = cfg.Hold.Seconds()
	if cfg.PID > 0 {
		s := &ServerReport{
			PID:         cfg.PID,
			RSSBeforeMB: float64(before.RSSKB) / 1024,
			RSSAfterMB:  float64(connected.RSSKB) / 1024,
			CPUSeconds:  after.CPUSeconds - connected.CPUSeconds,
		}
		if cfg.Mode == modePresence {
			s.CPUSeconds = after.CPUSeconds - before.CPUSeconds
		}
		if r.Connect.Joined > 0 {
			s.RSSPerConnKB = float64(connected.RSSKB-before.RSSKB) / float64(r.Connect.Joined)
		}
		if cfg.Hold > 0 {
			s.RSSHeldMB = float64(held.RSSKB) / 1024
			if r.Connect.Joined > 0 {
				s.RSSPerConnHeldKB = float64(held.RSSKB-before.RSSKB) / float64(r.Connect.Joined)
			}
		}
		if r.Messages.Delivered > 0 {
			s.CPUSecondsPerMillion = s.CPUSeconds / (float64(r.Messages.Delivered) / 1e6)
		}
		r.Server = s
	}
	return r, nil
}

func aggregate(cfg config, reports []*workerReport, sent map[int]int64) *Report {
	r := &Report{URL: cfg.URL, Protocol: cfg.Protocol, Mode: cfg.Mode, Conns: cfg.Conns, Topics: cfg.Topics,
		Publishers: cfg.Publishers, Workers: cfg.Workers, Size: cfg.Size, Rate: cfg.Rate}
	if r.Protocol == "" {
		r.Protocol = "phoenix"
	}
	if r.Mode == "" {
		r.Mode = modeFanout
	}
	var connect, join, lat, complete histSnapshot
	var startNS, lastComplete int64
	completed := 0
	receivers := map[int]int{}
	var phase time.Duration
	var first, last, lastSend int64
	for _, w := range reports {
		r.Connect.Attempted += w.Conns
		r.Connect.Joined += w.Joined
		r.Connect.DialErrors += w.DialErrors
		r.Connect.JoinErrors += w.JoinErrors
		r.Messages.Disconnects += w.Disconnects
		for k, n := range w.DisconnectedBy {
			if r.Messages.DisconnectedBy == nil {
				r.Messages.DisconnectedBy = map[string]int{}
			}
			r.Messages.DisconnectedBy[k] += n
		}
		r.Messages.PublishErrors += w.PublishErrors
		r.Messages.Duplicated += w.Dup
		phase = max(phase, time.Duration(w.ConnectPhaseNS))
		connect.merge(w.Connect)
		join.merge(w.Join)
		lat.merge(w.Latency)
		for t, n := range w.Receivers {
			receivers[t] += n
		}
		for _, n := range w.Got {
			r.Messages.Delivered += n
		}
		if w.FirstSendNS != 0 && (first == 0 || w.FirstSendNS < first) {
			first = w.FirstSendNS
		}
		last = max(last, w.LastRecvNS)
		lastSend = max(lastSend, w.LastSendNS)
		if w.StartNS != 0 && (startNS == 0 || w.StartNS < startNS) {
			startNS = w.StartNS
		}
		completed += w.Complete
		lastComplete = max(lastComplete, w.LastCompleteNS)
		complete.merge(w.PresenceComplete)
	}
	if cfg.Mode == modePresence {
		p := &PresenceReport{Users: cfg.Conns, Complete: completed, CompleteMs: percentiles(complete)}
		if completed == cfg.Conns && lastComplete > startNS {
			p.AllCompleteSeconds = float64(lastComplete-startNS) / 1e9
		}
		r.Presence = p
	}
	for p, n := range sent {
		r.Messages.Sent += n
		r.Messages.Expected += n * int64(receivers[p%cfg.Topics])
	}
	r.Messages.Missed = r.Messages.Expected - r.Messages.Delivered
	r.Connect.PhaseSeconds = phase.Seconds()
	if phase > 0 {
		r.Connect.JoinedPerSec = float64(r.Connect.Joined) / phase.Seconds()
	}
	r.Connect.HandshakeMs = percentiles(connect)
	r.Connect.JoinMs = percentiles(join)
	r.LatencyMs = percentiles(lat)
	if first > 0 && last > first {
		secs := float64(last-first) / 1e9
		r.Messages.Seconds = secs
		r.Messages.DeliveriesPerSec = float64(r.Messages.Delivered) / secs
	}
	if first > 0 && lastSend > first {
		r.Messages.PublishSeconds = float64(lastSend-first) / 1e9
		r.Messages.SentPerSec = float64(r.Messages.Sent) / r.Messages.PublishSeconds
	}
	return r
}

// writeTable prints the report for people.
func (r *Report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rate := "flat out"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f msg/s", r.Rate)
	}
	fmt.Fprintf(tw, "target\t%s (%s)\n", r.URL, r.Protocol)
	if p := r.Presence; p != nil {
		c := r.Connect
		fmt.Fprintf(tw, "load\t%d users joining one presence topic, %d worker(s)\n", p.Users, r.Workers)
		fmt.Fprintf(tw, "connect\t%d/%d joined in %.2fs (%.0f/s), %d dial errors, %d join errors\n",
			c.Joined, c.Attempted, c.PhaseSeconds, c.JoinedPerSec, c.DialErrors, c.JoinErrors)
		fmt.Fprintf(tw, "join ms\t%s\n", c.JoinMs)
		fmt.Fprintf(tw, "complete lists\t%d/%d, all complete %.2fs after the first dial\n", p.Complete, p.Users, p.AllCompleteSeconds)
		fmt.Fprintf(tw, "join to complete ms\t%s\n", p.CompleteMs)
		fmt.Fprintf(tw, "errors\t%d disconnects%s\n", r.Messages.Disconnects, r.Messages.byReason())
		if s := r.Server; s != nil {
			fmt.Fprintf(tw, "server rss\t%.1f MB -> %.1f MB joined (pid %d)\n", s.RSSBeforeMB, s.RSSAfterMB, s.PID)
			fmt.Fprintf(tw, "server cpu\t%.2f s over the run\n", s.CPUSeconds)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "load\t%d receivers on %d topics, %d publishers at %s, %d-byte payloads, %d worker(s)\n",
		r.Conns, r.Topics, r.Publishers, rate, r.Size, r.Workers)
	c := r.Connect
	fmt.Fprintf(tw, "connect\t%d/%d joined in %.2fs (%.0f/s), %d dial errors, %d join errors\n",
		c.Joined, c.Attempted, c.PhaseSeconds, c.JoinedPerSec, c.DialErrors, c.JoinErrors)
	fmt.Fprintf(tw, "handshake ms\t%s\n", c.HandshakeMs)
	fmt.Fprintf(tw, "join ms\t%s\n", c.JoinMs)
	m := r.Messages
	fmt.Fprintf(tw, "messages\t%d sent in %.2fs (%.0f/s), %d/%d delivered in %.2fs\n",
		m.Sent, m.PublishSeconds, m.SentPerSec, m.Delivered, m.Expected, m.Seconds)
	fmt.Fprintf(tw, "deliveries/s\t%.0f\n", m.DeliveriesPerSec)
	fmt.Fprintf(tw, "latency ms\t%s\n", r.LatencyMs)
	fmt.Fprintf(tw, "missed\t%d\n", m.Missed)
	fmt.Fprintf(tw, "duplicated\t%d\n", m.Duplicated)
	fmt.Fprintf(tw, "errors\t%d publish, %d disconnects%s\n", m.PublishErrors, m.Disconnects, r.Messages.byReason())
	if s := r.Server; s != nil {
		fmt.Fprintf(tw, "server rss\t%.1f MB -> %.1f MB connected, %.2f KB per connection (pid %d)\n",
			s.RSSBeforeMB, s.RSSAfterMB, s.RSSPerConnKB, s.PID)
		if r.HoldSeconds > 0 {
			fmt.Fprintf(tw, "server rss held\t%.1f MB after holding %.0fs, %.2f KB per connection\n",
				s.RSSHeldMB, r.HoldSeconds, s.RSSPerConnHeldKB)
		}
		fmt.Fprintf(tw, "server cpu\t%.2f s while publishing, %.2f s per million deliveries\n", s.CPUSeconds, s.CPUSecondsPerMillion)
	}
	tw.Flush()
}

// byReason formats DisconnectedBy for the table.
func (m *messageStats) byReason() string {
	if len(m.DisconnectedBy) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.DisconnectedBy)) {
		parts = append(parts, fmt.Sprintf("%d× %s", m.DisconnectedBy[k], k))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %.3f  p90 %.3f  p99 %.3f  max %.3f", p.P50, p.P90, p.P99, p.Max)
}

// benchMain runs `plume bench`. It exits 3 when messages were missed or
// connections failed, so scripts can tell.
func benchMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if n, err := raiseFileLimit(); err == nil && uint64(cfg.total()/cfg.Workers+100) > n {
		fmt.Fprintf(stderr, "warning: open files limit is %d\n", n)
	}
	r, err := runBench(context.Background(), cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		r.writeTable(stdout)
	}
	if r.Messages.Missed != 0 || r.Connect.Joined != r.Connect.Attempted ||
		r.Presence != nil && r.Presence.Complete != r.Presence.Users {
		return 3
	}
	return 0
}

func parseBenchFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{}
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:4000/socket", "socket URL (loopback only); for centrifuge, its WebSocket URL such as ws://127.0.0.1:4100/connection/websocket")
	fs.StringVar(&cfg.Protocol, "protocol", "phoenix", "wire protocol: phoenix (Plume, Phoenix) or centrifuge (a Centrifuge server, see bench/centrifuge)")
	fs.StringVar(&cfg.Mode, "mode", modeFanout, "fanout: publishers broadcast to receivers; presence: -conns users join one presence topic (no publishers), measuring when every user's list is complete")
	fs.IntVar(&cfg.Conns, "conns", 100, fmt.Sprintf("receiving connections, each joined to one topic (max %d)", maxConns))
	fs.IntVar(&cfg.Topics, "topics", 1, "topics \"bench:0\" … \"bench:N-1\"; connection i joins i mod N")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "publishing connections, on top of -conns; publisher p publishes on topic p mod topics")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "messages per second over all publishers; 0 publishes flat out")
	fs.IntVar(&cfg.Messages, "messages", 1000, "messages per publisher")
	fs.IntVar(&cfg.Size, "size", 100, fmt.Sprintf("payload bytes (min %d)", minSize))
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "cap on the publishing phase")
	fs.IntVar(&cfg.Workers, "workers", 1, fmt.Sprintf("worker processes; one process drives at most %d connections here", maxConnsPerProcess))
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "dials in flight at once")
	fs.DurationVar(&cfg.Quiet, "quiet", 2*time.Second, "after publishing, stop waiting for deliveries once none came for this long")
	fs.DurationVar(&cfg.Hold, "hold", 0, "hold the joined connections idle (heartbeats only) this long before publishing; with -pid, server RSS is read again after it")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: report its RSS per connection and CPU per million deliveries from /proc")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, strings.TrimLeft(benchUsage, "\n"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %v\n", fs.Args())
		return cfg, errors.New("arguments")
	}
	if cfg.Mode == modePresence {
		cfg.Topics, cfg.Publishers = 1, 0
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return cfg, err
	}
	return cfg, nil
}

const benchUsage = `
usage: plume bench [flags]

Opens -conns connections to a Phoenix socket on this machine, joins each to a
topic, then has -publishers more connections push numbered, timestamped
messages, and reports connect and join times, deliveries per second, delivery
latency, and missed and duplicated messages.

The server needs a "bench:*" channel that broadcasts every "publish" event's
payload unchanged as "msg" to the topic's other subscribers and does not
reply: ` + "`plume bench-server`" + ` is one. With -pid, the report adds the server's
memory per connection and CPU seconds per million deliveries.

-protocol centrifuge speaks Centrifuge's protocol v2 JSON instead (connect and
subscribe, the publish command, pushed publications, pongs to the server's
pings) with the same payloads and measurements, so that Plume and Centrifuge
are measured by one tool: bench/centrifuge is such a server, and bench/run.sh
runs the comparison.

-mode presence has every connection join the topic "presence:0" as its own
user ("u000000", "u000001", ...) and measures how long until every
connection's list of present users is complete: from presence_state and
presence_diff (Phoenix; plume bench-server's "presence:*" channel), or from
the presence command's reply and join pushes (Centrifuge).

One process holds at most 20,000 open files here, so one bench process drives
at most 19,000 connections; -workers N spreads them over N child processes.
Above 25,000 connections, they come from 127.0.0.1, 127.0.0.2, … (20,000
each), as one source address has only ~28,000 ephemeral ports. Note that the
server process has the same 20,000-file limit.

`
