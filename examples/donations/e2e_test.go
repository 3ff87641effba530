package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
)

// End to end: the demo binary, built from this package, with the official
// phoenix client under Node (testdata/contract.mjs) and in Chromium
// (browser_test.go).

// binPath is the binary TestMain built, or "" if the build failed
// (buildErr says why).
var (
	binPath  string
	buildErr error
	buildDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var buildOnce sync.Once

// demoBinary builds the demo once per test run, with the race detector when
// the tests have it.
func demoBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "donations-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		bin := filepath.Join(dir, "donations")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// requireNode returns the node binary, or skips (fails under
// PLUME_REQUIRE_SERVICES=1) when node or the npm packages are missing.
func requireNode(t *testing.T, pkgs ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed")
	}
	for _, pkg := range append([]string{"phoenix", "ws"}, pkgs...) {
		if _, err := os.Stat(filepath.Join(repoRoot(t), "node_modules", pkg, "package.json")); err != nil {
			skipOrFail(t, "node_modules/"+pkg+" is missing (run npm ci in the repository root)")
		}
	}
	return node
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	testenv.SkipOrFail(t, reason)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// demoServer is a running demo binary.
type demoServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:port
	Addr   string // 127.0.0.1:port
	log    *lockedBuffer
	exited chan struct{}
	err    error // from Wait, once exited
}

// startServer runs the demo on addr (port 0 picks one) with db, and waits
// until it prints the URL to open.
func startServer(t *testing.T, addr, db string, env []string, args ...string) *demoServer {
	t.Helper()
	bin := demoBinary(t)
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-db", db}, args...)...)
	// Run from this package's directory: the server finds the phoenix
	// client in the repository's node_modules by itself.
	cmd.Env = append(os.Environ(), env...)
	s := &demoServer{t: t, cmd: cmd, log: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, "stdout: "+line)
			if u, ok := strings.CutPrefix(line, "Donations demo: open "); ok {
				urls <- strings.TrimSuffix(u, "/")
			}
		}
		io.Copy(io.Discard, stdout)
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	select {
	case u := <-urls:
		s.URL = u
		s.Addr = strings.TrimPrefix(u, "http://")
	case <-s.exited:
		t.Fatalf("the server exited before listening: %v\n%s", s.err, s.log)
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not start within 60s\n%s", s.log)
	}
	return s
}

// stop sends SIGTERM and expects a graceful exit (status 0) after the drain.
func (s *demoServer) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("the server did not stop within 30s of SIGTERM\n%s", s.log)
	}
	if s.err != nil {
		s.t.Fatalf("the server exited with %v\n%s", s.err, s.log)
	}
	if !strings.Contains(s.log.String(), `msg=stopped`) {
		s.t.Fatalf("no graceful stop in the log:\n%s", s.log)
	}
	// The port is free again.
	if ln, err := net.Listen("tcp", s.Addr); err != nil {
		s.t.Fatalf("port still taken after stop: %v", err)
	} else {
		ln.Close()
	}
}

// runNode runs a script from testdata with args and fails the test, with
// the script's output, if it fails.
func runNode(t *testing.T, node, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test-reporter=spec", filepath.Join("testdata", script)}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s %v: %v\n%s", script, args, err, out)
	}
	return string(out)
}

func TestEndToEndContract(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "donations.db")
	state := filepath.Join(dir, "state.json")
	env := []string{"ADMIN_TOKEN=e2e-token"}

	s := startServer(t, "127.0.0.1:0", db, env, "-refresh", "300ms")
	if strings.Contains(s.log.String(), "ADMIN_TOKEN is not set") {
		t.Fatal("warned about the admin token although ADMIN_TOKEN is set")
	}
	out := runNode(t, node, "contract.mjs", s.URL, "e2e-token", state, "before")
	t.Logf("before the restart:\n%s", summary(out))
	s.stop()

	// Same database, new process (and port): the totals are still there.
	s = startServer(t, "127.0.0.1:0", db, env)
	out = runNode(t, node, "contract.mjs", s.URL, "e2e-token", state, "after")
	t.Logf("after the restart:\n%s", summary(out))
	s.stop()
}

// summary keeps the pass/fail lines of node's spec report.
func summary(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "✔") || strings.HasPrefix(line, "✖") || strings.HasPrefix(line, "ℹ pass") || strings.HasPrefix(line, "ℹ fail") {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

func TestEndToEndDefaults(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	// Without ADMIN_TOKEN: the contract's default token, with a warning.
	env := []string{"ADMIN_TOKEN="}
	s := startServer(t, "127.0.0.1:0", ":memory:", env, "-phoenix", filepath.Join(dir, "nowhere"))
	// The server prints its URL before it has written every start-up log
	// line, so give the log a moment to catch up.
	for _, want := range []string{"ADMIN_TOKEN is not set", "npm ci"} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(s.log.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %q:\n%s", want, s.log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A missing phoenix client is explained to the browser too.
	resp, err := httpGet(s.URL + "/assets/phoenix.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 503 || !strings.Contains(resp.body, "npm ci") {
		t.Fatalf("phoenix.mjs without node_modules: %d %s", resp.status, resp.body)
	}
	s.stop()
}

type simpleResponse struct {
	status int
	body   string
}

func httpGet(url string) (simpleResponse, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return simpleResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return simpleResponse{resp.StatusCode, string(b)}, err
}
