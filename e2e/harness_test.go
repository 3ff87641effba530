package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// scenarioTimeout bounds one node process; the scripts finish in about a
// second and carry their own shorter limits.
const scenarioTimeout = 30 * time.Second

// requireNode returns the node binary, or skips the test (fails it under
// PLUME_REQUIRE_SERVICES=1) when node or the phoenix client is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed")
	}
	for _, pkg := range []string{"phoenix", "ws"} {
		if _, err := os.Stat(filepath.Join("..", "node_modules", pkg, "package.json")); err != nil {
			skipOrFail(t, "node_modules/"+pkg+" is missing (run make js)")
		}
	}
	return node
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	testenv.SkipOrFail(t, reason)
}

// event is one JSON line a scenario printed.
type event map[string]any

func (e event) name() string { s, _ := e["ev"].(string); return s }

func (e event) str(k string) string { s, _ := e[k].(string); return s }

func (e event) num(k string) float64 { f, _ := e[k].(float64); return f }

func (e event) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

type events []event

// named returns the events called name whose fields equal kv pairs.
func (es events) named(name string, kv ...string) events {
	var out events
next:
	for _, e := range es {
		if e.name() != name {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if e.str(kv[i]) != kv[i+1] {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func (es events) String() string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString("  " + e.String() + "\n")
	}
	return b.String()
}

// jsProc is a running scenario script.
type jsProc struct {
	t      *testing.T
	script string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testenv.Buffer
	cancel context.CancelFunc
	exited chan struct{}
	err    error // from Wait, valid after exited

	mu      sync.Mutex
	evs     events
	eof     bool
	changed chan struct{}
	next    int // await cursor
}

// startJS runs `node js/<script> <url> [opts-json]`. The process is killed
// after scenarioTimeout and at the end of the test.
func startJS(t *testing.T, script, url string, opts any) *jsProc {
	t.Helper()
	node := requireNode(t)
	args := []string{filepath.Join("js", script), url}
	if opts != nil {
		b, err := json.Marshal(opts)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.WaitDelay = 2 * time.Second
	p := &jsProc{t: t, script: script, cmd: cmd, stderr: &testenv.Buffer{}, cancel: cancel,
		exited: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = event{"ev": "stdout", "line": sc.Text()}
			}
			p.mu.Lock()
			p.evs = append(p.evs, e)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		readDone.Wait()
		p.err = cmd.Wait()
		p.mu.Lock()
		p.eof = true
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.exited
	})
	return p
}

func (p *jsProc) snapshot() (events, bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(events(nil), p.evs...), p.eof, p.changed
}

func (p *jsProc) failf(format string, args ...any) {
	p.t.Helper()
	evs, _, _ := p.snapshot()
	p.t.Fatalf("%s: %s\nthe client printed:\n%sstderr:\n%s", p.script, fmt.Sprintf(format, args...), evs, p.stderr.String())
}

// await returns the next event called name after the last awaited one.
func (p *jsProc) await(name string) event {
	p.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		evs, eof, changed := p.snapshot()
		for i := p.next; i < len(evs); i++ {
			if evs[i].name() == "fatal" {
				p.failf("scenario failed: %s", evs[i].str("msg"))
			}
			if evs[i].name() == name {
				p.next = i + 1
				return evs[i]
			}
		}
		if eof {
			<-p.exited
			p.failf("exited (%v) before printing %q", p.err, name)
		}
		select {
		case <-changed:
		case <-deadline.C:
			p.failf("waited 10s for %q", name)
		}
	}
}

// tell sends a command line to the script.
func (p *jsProc) tell(cmd string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		p.failf("writing command %q: %v", cmd, err)
	}
}

// finish waits for the script to exit successfully and returns everything
// it printed.
func (p *jsProc) finish() events {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(scenarioTimeout):
		p.failf("did not exit")
	}
	evs, _, _ := p.snapshot()
	for _, e := range evs {
		if e.name() == "fatal" {
			p.failf("scenario failed: %s", e.str("msg"))
		}
	}
	if p.err != nil {
		p.failf("exited with %v", p.err)
	}
	if len(evs) == 0 || evs[len(evs)-1].name() != "done" {
		p.failf("exited without printing done")
	}
	p.t.Logf("%s printed:\n%s", p.script, evs)
	return evs
}

// runJS runs a scenario to completion.
func runJS(t *testing.T, script, url string, opts any) events {
	t.Helper()
	return startJS(t, script, url, opts).finish()
}

// jsonOf normalizes v (a decoded JSON value, or any Go value) to compact
// JSON with sorted keys.
func jsonOf(v any) string {
	if b, ok := v.([]byte); ok {
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return "<invalid JSON " + string(b) + ">"
		}
		v = x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var x any
	json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

// sameJSON reports whether got and want (JSON text) are the same JSON value.
func sameJSON(got any, want string) bool {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		panic("bad want JSON: " + want)
	}
	var g any
	json.Unmarshal([]byte(jsonOf(got)), &g)
	return reflect.DeepEqual(g, w)
}

// expectJSON fails unless got is the JSON value want.
func expectJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	if !sameJSON(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, jsonOf(got), want)
	}
}

// bytesOf returns the bytes of a described ArrayBuffer, failing if the value
// is not one.
func bytesOf(t *testing.T, what string, v any) []byte {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok || m["arraybuffer"] != true {
		t.Errorf("%s: want an ArrayBuffer, got %s", what, jsonOf(v))
		return nil
	}
	list, _ := m["bytes"].([]any)
	out := make([]byte, len(list))
	for i, x := range list {
		out[i] = byte(x.(float64))
	}
	return out
}
