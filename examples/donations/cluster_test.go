package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plumehq/plume/examples/donations/store"
	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
	"github.com/plumehq/plume/pubsub"
)

// The demo as a cluster: three nodes of the real binary on one PostgreSQL
// database, over Redis and then over NATS, with phoenix.js clients spread
// over them (testdata/cluster.mjs). The script asks for node 2 to be
// killed (kill -9) and restarted, and for node 1 to be stopped (SIGTERM).

// clusterPresenceDown is the nodes' -presence-down: short, so that a dead
// node's users leave within the test's time.
const clusterPresenceDown = 3 * time.Second

func TestCluster(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t)
	brokers := []struct{ name, addr, url string }{
		{"redis", "127.0.0.1:6379", "redis://127.0.0.1:6379/0?prefix="},
		{"nats", "127.0.0.1:4222", "nats://127.0.0.1:4222?prefix="},
	}
	for _, b := range brokers {
		requireTCP(t, b.name, b.addr)
	}
	pgURL := requirePostgres(t)
	demoBinary(t)
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			runCluster(t, node, b.url+"plumetest"+randomHex(4), clusterDB(t, pgURL))
		})
	}
}

func runCluster(t *testing.T, node, pubsubURL, db string) {
	secret := randomHex(32)
	env := []string{"ADMIN_TOKEN=cluster-token", "SECRET_KEY_BASE=" + secret}
	args := func(i int) []string {
		return []string{"-pubsub", pubsubURL, "-node", "n" + strconv.Itoa(i), "-presence-down", clusterPresenceDown.String()}
	}
	nodes := make([]*demoServer, 3)
	urls := make([]string, len(nodes))
	for i := range nodes {
		nodes[i] = startServer(t, "127.0.0.1:0", db, env, args(i)...)
		urls[i] = nodes[i].URL
	}
	cfg, _ := json.Marshal(map[string]any{"urls": urls, "token": "cluster-token", "down_ms": clusterPresenceDown.Milliseconds()})

	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "cluster.mjs"), string(cfg))
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()

	var transcript []string
	timings := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		transcript = append(transcript, line)
		cmdLine, ok := strings.CutPrefix(line, "@@ ")
		if !ok {
			continue
		}
		f := strings.Fields(cmdLine)
		if f[0] == "timing" && len(f) == 3 {
			timings[f[1]] = f[2] + " ms"
			continue
		}
		if len(f) != 2 {
			t.Fatalf("bad request from the script: %q", line)
		}
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 || i >= len(nodes) {
			t.Fatalf("bad request from the script: %q", line)
		}
		switch f[0] {
		case "kill":
			nodes[i].cmd.Process.Kill()
			<-nodes[i].exited
		case "restart":
			// The same address, so that the node's clients reconnect.
			nodes[i] = startServer(t, nodes[i].Addr, db, env, args(i)...)
		case "term":
			start := time.Now()
			nodes[i].stop()
			t.Logf("node %d stopped gracefully in %v", i, time.Since(start).Round(time.Millisecond))
		default:
			t.Fatalf("bad request from the script: %q", line)
		}
		fmt.Fprintf(stdin, "ok %s\n", cmdLine)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cluster.mjs: %v\n%s\n%s", err, strings.Join(transcript, "\n"), stderr.String())
	}
	for _, line := range transcript {
		if strings.HasPrefix(line, "ok - ") {
			t.Log(line)
		}
	}
	t.Logf("timings: %v", timings)
	for i, s := range nodes {
		if s.cmd.ProcessState == nil {
			s.stop()
		}
		if strings.Contains(s.log.String(), "DATA RACE") {
			t.Errorf("node %d:\n%s", i, s.log)
		}
	}
}

// requireTCP skips (fails under PLUME_REQUIRE_SERVICES=1) when nothing
// listens at addr.
func requireTCP(t *testing.T, name, addr string) {
	t.Helper()
	testenv.TCP(t, name, addr)
}

// requirePostgres returns the test database's URL ($PLUME_POSTGRES_URL,
// else database "test" on 127.0.0.1:5432 as user postgres), or skips
// (fails under PLUME_REQUIRE_SERVICES=1) when it is unreachable.
func requirePostgres(t *testing.T) string {
	t.Helper()
	u := os.Getenv("PLUME_POSTGRES_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		skipOrFail(t, "PostgreSQL is not reachable: "+msg)
	}
	c.Close(ctx)
	return u
}

// clusterDB creates a schema of its own for one test, dropped at cleanup,
// and returns the -db URL that keeps the demo's tables in it.
func clusterDB(t *testing.T, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := "cluster_" + randomHex(6)
	exec := func(ctx context.Context, sql string) error {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestClusterFlags(t *testing.T) {
	env := func(string) string { return "" }
	cfg, err := parseFlags([]string{"-pubsub", "redis://127.0.0.1:6379/0", "-node", "web-1", "-presence-down", "3s", "-db", "postgres://h/db"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PubSub != "redis://127.0.0.1:6379/0" || cfg.Node != "web-1" || cfg.PresenceDown != 3*time.Second || cfg.DB != "postgres://h/db" {
		t.Fatalf("flags %+v", cfg)
	}
	for _, ok := range []string{"redis://h:1/0", "rediss://h:1/0", "unix:///tmp/redis.sock", "nats://h:4222", "tls://h:4222", ""} {
		if _, err := parseFlags([]string{"-pubsub", ok}, env, io.Discard); err != nil {
			t.Errorf("-pubsub %q: %v", ok, err)
		}
	}
	for _, args := range [][]string{
		{"-pubsub", "http://h:1"},
		{"-pubsub", "127.0.0.1:6379"},
		{"-presence-down", "100ms"},
		{"-presence-down", "11m"},
	} {
		if _, err := parseFlags(args, env, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

func TestPresenceOptions(t *testing.T) {
	if o := presenceOptions(config{PresenceDown: time.Minute}); !o.Replication.Disabled {
		t.Fatalf("one node: replication %+v, want disabled", o.Replication)
	}
	o := presenceOptions(config{PubSub: "nats://h:4222", PresenceDown: 30 * time.Second})
	if r := o.Replication; r.Disabled || !r.PermdownOnClose || r.BroadcastPeriod != 1500*time.Millisecond || r.DownPeriod != 30*time.Second {
		t.Fatalf("cluster: replication %+v", r)
	}
	for _, down := range []time.Duration{minPresenceDown, time.Second, 3 * time.Second, 30 * time.Second, maxPresenceDown} {
		r := replication(down)
		// An idle node's empty heartbeats come at least twice per down
		// period, and presence.New accepts the settings.
		if idle := time.Duration(r.MaxSilentPeriods+1) * r.BroadcastPeriod; idle > down/2 || r.DownPeriod < 2*r.BroadcastPeriod {
			t.Errorf("down %v: %+v (idle heartbeat every %v)", down, r, idle)
		}
		tr := presence.NewWithPubSub(pubsub.NewLocal(), presence.Options{Replication: r})
		tr.Close()
	}
}

func TestNewPubSub(t *testing.T) {
	leakcheck.Check(t)
	log := slog.New(slog.DiscardHandler)
	ps, closePS, err := newPubSub(config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	closePS()
	if ps.NodeName() == "" {
		t.Fatal("no node name")
	}
	for _, c := range []struct{ name, addr, url string }{
		{"redis", "127.0.0.1:6379", "redis://127.0.0.1:6379/0"},
		{"nats", "127.0.0.1:4222", "nats://127.0.0.1:4222"},
	} {
		t.Run(c.name, func(t *testing.T) {
			requireTCP(t, c.name, c.addr)
			prefix := "plumetest" + randomHex(4)
			u := c.url + "?prefix=" + prefix + "&node=from-url"
			a, closeA, err := newPubSub(config{PubSub: u, Node: "web-1"}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer closeA()
			b, closeB, err := newPubSub(config{PubSub: u}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer closeB()
			if a.NodeName() != "web-1" || b.NodeName() != "from-url" {
				t.Fatalf("node names %q and %q, want web-1 (-node) and from-url (the URL's)", a.NodeName(), b.NodeName())
			}
			// b receives what a broadcasts, through the broker.
			got := make(chan string, 1)
			sub := pubsub.Func(func(m *pubsub.Message) { got <- string(m.Payload) })
			if err := b.Subscribe("t", sub); err != nil {
				t.Fatal(err)
			}
			defer b.Unsubscribe("t", sub)
			deadline := time.After(5 * time.Second)
			for {
				// The subscription reaches the broker asynchronously.
				if err := a.Broadcast(t.Context(), &pubsub.Message{Topic: "t", Event: "e", Payload: []byte(`"hi"`)}); err != nil {
					t.Fatal(err)
				}
				select {
				case p := <-got:
					if p != `"hi"` {
						t.Fatalf("got %s", p)
					}
					return
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Fatal("nothing crossed the broker within 5s")
				}
			}
		})
	}
	if _, _, err := newPubSub(config{PubSub: "nats://127.0.0.1:1"}, log); err == nil {
		t.Error("newPubSub with no NATS server succeeded")
	}
}

func TestNewStore(t *testing.T) {
	leakcheck.Check(t)
	st, err := newStore(t.Context(), config{DB: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*store.SQLite); !ok {
		t.Errorf(":memory: opened a %T", st)
	}
	st.Close()
	db := clusterDB(t, requirePostgres(t))
	st, err = newStore(t.Context(), config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*store.Postgres); !ok {
		t.Errorf("%s opened a %T", db, st)
	}
	st.Close()
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db?x=1": "postgres://u:xxxxx@h/db?x=1",
		"redis://:pw@h:6379/0":         "redis://:xxxxx@h:6379/0",
		"postgres://u@h/db":            "postgres://u@h/db",
		"donations.db":                 "donations.db",
		"":                             "",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
