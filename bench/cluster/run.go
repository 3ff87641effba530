package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"
)

// runConfig is what `cluster-bench run` measures.
type runConfig struct {
	Plume      string
	Setups     []string
	Redis      string
	NATS       string
	Conns      int
	Topics     int
	Publishers int
	Rate       float64
	Messages   int
	Size       int
	Port       int
}

// report is the part of `plume bench -json` shown here.
type report struct {
	Connect struct {
		Joined int `json:"joined"`
	} `json:"connect"`
	Messages struct {
		Sent             int64   `json:"sent"`
		Expected         int64   `json:"expected_deliveries"`
		Delivered        int64   `json:"delivered"`
		Missed           int64   `json:"missed"`
		Duplicated       int64   `json:"duplicated"`
		DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	} `json:"messages"`
	LatencyMs struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
}

// result is one setup's figures.
type result struct {
	Setup  string
	Report report
	// Per node, over the publishing phase: CPU seconds and the messages
	// its adapter received from and sent to the broker.
	CPU     []float64
	In, Out []int64
	// BrokerCPU is the broker's (redis-server's or nats-server's) CPU
	// seconds over the same time, if it runs on this machine.
	BrokerCPU float64
	// PubMeanMs and PubMaxMs are how long node 0's adapter Broadcast
	// took, on average and at most: the publisher's channel waits for it.
	PubMeanMs, PubMaxMs float64
	// NumSub is, for Redis, PUBSUB NUMSUB of each topic's channel while
	// everyone was connected: how many nodes receive the topic.
	NumSub []int64
}

func runMain(args []string, stdout, stderr io.Writer) int {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Plume, "plume", "plume", "the plume binary (go build ./cmd/plume in the repository root)")
	setups := fs.String("setups", "local,redis,nats", "comma-separated: local (one node), redis, nats (three nodes)")
	fs.StringVar(&c.Redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL")
	fs.StringVar(&c.NATS, "nats", "nats://127.0.0.1:4222", "NATS URL")
	fs.IntVar(&c.Conns, "conns", 1500, "receivers, spread round-robin over the nodes")
	fs.IntVar(&c.Topics, "topics", 1, "topics; receiver i joins bench:<i mod topics> (3 on 3 nodes: one topic per node)")
	fs.IntVar(&c.Publishers, "publishers", 1, "publishers, all on node 0; publisher p publishes on bench:<p mod topics>")
	fs.Float64Var(&c.Rate, "rate", 40, "messages per second over all publishers")
	fs.IntVar(&c.Messages, "messages", 400, "messages per publisher")
	fs.IntVar(&c.Size, "size", 100, "payload bytes")
	fs.IntVar(&c.Port, "port", 4400, "the lb's port; nodes listen on the next ones")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Setups = strings.Split(*setups, ",")
	var results []result
	for _, s := range c.Setups {
		r, err := runSetup(c, s, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "cluster-bench run: %s: %v\n", s, err)
			return 1
		}
		results = append(results, r)
	}
	printResults(stdout, c, results)
	return 0
}

// proc is a child process and the first line it printed.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func start(name string, args []string, stderr io.Writer) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	first := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		first <- sc.Scan()
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(p.exited)
	}()
	select {
	case ok := <-first:
		if !ok {
			return nil, fmt.Errorf("%s %v exited", name, args)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s %v did not start", name, args)
	}
	return p, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func runSetup(c runConfig, setup string, stderr io.Writer) (result, error) {
	res := result{Setup: setup}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "cluster-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	prefix := "clusterbench" + randomHex(4)
	n, psURL := 3, ""
	switch setup {
	case "local":
		n = 1
	case "redis":
		psURL = c.Redis + "?prefix=" + prefix
	case "nats":
		psURL = c.NATS + "?prefix=" + prefix
	default:
		return res, fmt.Errorf("unknown setup %q", setup)
	}
	var nodes []*proc
	var socks, statsURLs []string
	defer func() {
		for _, p := range nodes {
			p.stop()
		}
	}()
	for i := range n {
		addr := "127.0.0.1:" + strconv.Itoa(c.Port+1+i)
		sock := filepath.Join(dir, fmt.Sprintf("n%d.sock", i))
		p, err := start(self, []string{"node", "-addr", addr, "-pubsub", psURL, "-node", fmt.Sprintf("n%d", i), "-handoff", sock}, stderr)
		if err != nil {
			return res, err
		}
		nodes = append(nodes, p)
		socks = append(socks, sock)
		statsURLs = append(statsURLs, "http://"+addr+"/stats")
	}
	lbAddr := "127.0.0.1:" + strconv.Itoa(c.Port)
	lb, err := start(self, []string{"lb", "-addr", lbAddr, "-backends", strings.Join(socks, ","), "-spread", strconv.Itoa(c.Conns)}, stderr)
	if err != nil {
		return res, err
	}
	defer lb.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bench := exec.CommandContext(ctx, c.Plume, "bench", "-url", "ws://"+lbAddr+"/socket", "-json",
		"-conns", strconv.Itoa(c.Conns), "-topics", strconv.Itoa(c.Topics), "-publishers", strconv.Itoa(c.Publishers),
		"-rate", strconv.FormatFloat(c.Rate, 'f', -1, 64), "-messages", strconv.Itoa(c.Messages), "-size", strconv.Itoa(c.Size),
		// In order, so that the lb spreads the receivers and puts the
		// publishers on node 0; the hold is when the counters are read.
		"-dial-concurrency", "1", "-hold", "3s")
	bench.Stderr = stderr
	var out strings.Builder
	bench.Stdout = &out
	if err := bench.Start(); err != nil {
		return res, err
	}
	benchDone := make(chan error, 1)
	go func() { benchDone <- bench.Wait() }()

	// Everyone is connected: read the counters (and Redis's subscribers
	// per topic) while the bench holds, before it publishes.
	var before []nodeStats
	var brokerBefore float64
	broker := map[string]string{"redis": "redis-server", "nats": "nats-server"}[setup]
	want := c.Conns + c.Publishers
	for {
		st, err := allStats(statsURLs)
		total := 0
		for _, s := range st {
			total += s.Connections
		}
		if err == nil && total == want {
			time.Sleep(time.Second) // the last joins
			before, err = allStats(statsURLs)
			if err != nil {
				return res, err
			}
			brokerBefore = procCPU(broker)
			break
		}
		select {
		case err := <-benchDone:
			return res, fmt.Errorf("plume bench ended before every connection was up: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if setup == "redis" {
		res.NumSub, err = numSub(c.Redis, prefix, c.Topics)
		if err != nil {
			return res, err
		}
	}
	// The bench closes its connections once the last delivery is in, then
	// reports: each node's figures are its last ones with every
	// connection still open (sampled every 50 ms), so that the teardown's
	// CPU is left out.
	after := append([]nodeStats(nil), before...)
	brokerAfter := brokerBefore
	var benchErr error
sample:
	for {
		select {
		case benchErr = <-benchDone:
			break sample
		case <-time.After(50 * time.Millisecond):
		}
		st, err := allStats(statsURLs)
		if err != nil {
			continue
		}
		full := true
		for i := range st {
			if st[i].Connections == before[i].Connections {
				after[i] = st[i]
			} else {
				full = false
			}
		}
		if full {
			brokerAfter = procCPU(broker)
		}
	}
	if benchErr != nil {
		return res, fmt.Errorf("plume bench: %v\n%s", benchErr, out.String())
	}
	// The broker counters do not move in the teardown: read them last.
	final, err := allStats(statsURLs)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal([]byte(out.String()), &res.Report); err != nil {
		return res, fmt.Errorf("plume bench -json: %v\n%s", err, out.String())
	}
	res.BrokerCPU = brokerAfter - brokerBefore
	if n := final[0].RemoteOut - before[0].RemoteOut; n > 0 {
		res.PubMeanMs = (final[0].BroadcastSeconds - before[0].BroadcastSeconds) * 1e3 / float64(n)
		res.PubMaxMs = final[0].BroadcastMaxMs
	}
	for i := range after {
		res.CPU = append(res.CPU, after[i].CPUSeconds-before[i].CPUSeconds)
		if psURL != "" {
			res.In = append(res.In, final[i].RemoteIn-before[i].RemoteIn)
			res.Out = append(res.Out, final[i].RemoteOut-before[i].RemoteOut)
		}
	}
	return res, nil
}

// procCPU is the CPU seconds of the processes named comm on this
// machine, from /proc (0 if there are none, or for comm "").
func procCPU(comm string) float64 {
	if comm == "" {
		return 0
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var ticks int64
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime stime: fields 14 and 15.
		lp, rp := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if lp < 0 || rp < lp || string(b[lp+1:rp]) != comm {
			continue
		}
		f := strings.Fields(string(b[rp+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return float64(ticks) / 100 // USER_HZ
}

func allStats(urls []string) ([]nodeStats, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	var out []nodeStats
	for _, u := range urls {
		resp, err := c.Get(u)
		if err != nil {
			return nil, err
		}
		var s nodeStats
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// numSub asks Redis how many subscribers (nodes) each topic's channel has.
func numSub(redisURL, prefix string, topics int) ([]int64, error) {
	o, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	o.DisableCache = true
	rc, err := rueidis.NewClient(o)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var chans []string
	for t := range topics {
		chans = append(chans, prefix+":t:bench:"+strconv.Itoa(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := rc.Do(ctx, rc.B().PubsubNumsub().Channel(chans...).Build()).AsIntMap()
	if err != nil {
		return nil, err
	}
	out := make([]int64, topics)
	for i, ch := range chans {
		out[i] = m[ch]
	}
	return out, nil
}

func printResults(w io.Writer, c runConfig, rs []result) {
	fmt.Fprintf(w, "%d receivers on %d topic(s), %d publisher(s) on node 0 at %g msg/s, %d messages each, %d-byte payloads\n\n",
		c.Conns, c.Topics, c.Publishers, c.Rate, c.Messages, c.Size)
	fmt.Fprintln(w, "| setup | delivered | deliveries/s | latency p50 / p90 / p99 / max ms | CPU s per node | broker CPU s | from broker per node | to broker per node | publish call mean / max ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		m := r.Report.Messages
		l := r.Report.LatencyMs
		setup := r.Setup
		if setup != "local" {
			setup += " (3 nodes)"
		} else {
			setup = "one node"
		}
		broker, pub := "–", "–"
		if r.Setup != "local" {
			broker = strconv.FormatFloat(r.BrokerCPU, 'f', 2, 64)
			pub = fmt.Sprintf("%.2f / %.1f", r.PubMeanMs, r.PubMaxMs)
		}
		fmt.Fprintf(w, "| %s | %d/%d | %.0f | %.1f / %.1f / %.1f / %.1f | %s | %s | %s | %s | %s |\n",
			setup, m.Delivered, m.Expected, m.DeliveriesPerSec, l.P50, l.P90, l.P99, l.Max,
			floats(r.CPU), broker, ints(r.In), ints(r.Out), pub)
	}
	for _, r := range rs {
		if r.NumSub != nil {
			fmt.Fprintf(w, "\nRedis PUBSUB NUMSUB per topic (%s): %s\n", r.Setup, ints(r.NumSub))
		}
		if m := r.Report.Messages; m.Missed > 0 || m.Duplicated > 0 {
			fmt.Fprintf(w, "\n%s: %d missed, %d duplicated\n", r.Setup, m.Missed, m.Duplicated)
		}
	}
}

func floats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strings.Join(s, " / ")
}

func ints(v []int64) string {
	if v == nil {
		return "–"
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, " / ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
