package plume_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/plumehq/plume/internal/testenv"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
)

// End-to-end tests of the long-poll transport with the unmodified phoenix.js
// client under Node (testdata/longpoll/*.mjs).

func lpRequireNode(t *testing.T) {
	t.Helper()
	testenv.Node(t)
}

// lpNode is a running script; its stdout lines arrive on lines.
type lpNode struct {
	t      *testing.T
	diag   func() string // more to show when the script fails
	lines  chan string
	done   chan error
	stderr *lpLockedBuffer
	cancel context.CancelFunc
}

type lpLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lpLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lpLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func lpRunNode(t *testing.T, script, socketURL string) *lpNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "longpoll", script), socketURL)
	n := &lpNode{t: t, lines: make(chan string, 100), done: make(chan error, 1), stderr: &lpLockedBuffer{}, cancel: cancel}
	cmd.Stderr = n.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
		close(n.lines)
		n.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		for range n.lines {
		}
		<-n.done
	})
	return n
}

// expect requires the script's next line to be want.
func (n *lpNode) expect(want string) {
	n.t.Helper()
	select {
	case got, ok := <-n.lines:
		if !ok {
			err := <-n.done
			n.done <- err
			n.t.Fatalf("script ended (%v) before %s; stderr:\n%s%s", err, want, n.stderr.String(), n.more())
		}
		if got != want {
			n.t.Fatalf("script:\nwant %s\ngot  %s\nstderr:\n%s%s", want, got, n.stderr.String(), n.more())
		}
	case <-time.After(20 * time.Second):
		n.t.Fatalf("script: no %s in time; stderr:\n%s%s", want, n.stderr.String(), n.more())
	}
}

func (n *lpNode) more() string {
	if n.diag == nil {
		return ""
	}
	return "\n" + n.diag()
}

// finish requires the script to exit 0 with nothing more on stdout.
func (n *lpNode) finish() {
	n.t.Helper()
	for line := range n.lines {
		n.t.Errorf("script: unexpected line %s", line)
	}
	err := <-n.done
	n.done <- err
	if err != nil {
		n.t.Fatalf("script: %v; stderr:\n%s%s", err, n.stderr.String(), n.more())
	}
}

// lpRecorder logs the requests a script makes and the replies, to show
// when it fails.
type lpRecorder struct {
	h     http.Handler
	start time.Time
	mu    sync.Mutex
	log   []string
}

func newLPRecorder(h http.Handler) *lpRecorder { return &lpRecorder{h: h, start: time.Now()} }

type lpRecordWriter struct {
	http.ResponseWriter
	code int
	body []byte
}

func (w *lpRecordWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *lpRecordWriter) Write(b []byte) (int, error) {
	if len(w.body) < 300 {
		w.body = append(w.body, b[:min(len(b), 300-len(w.body))]...)
	}
	return w.ResponseWriter.Write(b)
}

func (rec *lpRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Since(rec.start)
	rw := &lpRecordWriter{ResponseWriter: w, code: 200}
	rec.h.ServeHTTP(rw, r)
	q := r.URL.Query()
	if tok := q.Get("token"); len(tok) > 12 {
		q.Set("token", tok[len(tok)-12:])
	}
	rec.mu.Lock()
	rec.log = append(rec.log, fmt.Sprintf("%6dms..%6dms %s %s?%s -> %d %s", t0.Milliseconds(), time.Since(rec.start).Milliseconds(),
		r.Method, r.URL.Path, q.Encode(), rw.code, rw.body))
	rec.mu.Unlock()
}

func (rec *lpRecorder) String() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return "requests:\n" + strings.Join(rec.log, "\n")
}

func lpSocketURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket"
}

func TestLongPollNodeClient(t *testing.T) {
	lpRequireNode(t)
	leakcheck.Check(t)
	var rec *lpRecorder
	env := newLPEnvWrapped(t, &plume.Socket{}, plume.Options{}, func(ep *plume.Endpoint) http.Handler {
		rec = newLPRecorder(ep)
		return rec
	})
	n := lpRunNode(t, "basic.mjs", lpSocketURL(env.srv))
	n.diag = rec.String
	n.expect(`joined`)
	n.expect(`{"ping":{"status":"ok","response":{"a":1}}}`)
	n.expect(`{"whoami":{"status":"ok","response":{"auth":"tok-js","transport":"longpoll","x":""}}}`)
	n.expect(`{"bin":{"status":"ok","response":{"bytes":"[1 2 3 250]","size":4}}}`)
	n.expect(`{"shout":"ok","shouted":{"m":"hi"}}`)
	n.expect(`ready for news`)
	if err := env.ep.Broadcast(context.Background(), "room:js", "news", map[string]string{"from": "go"}); err != nil {
		t.Fatal(err)
	}
	n.expect(`{"news":{"from":"go"}}`)
	n.expect(`ready for disconnect`)
	if err := env.ep.Disconnect(context.Background(), "user:js1"); err != nil {
		t.Fatal(err)
	}
	env.expectReason("room:js shutdown: closed")
	n.expect(`{"close":3410}`)
	n.expect(`rejoined`)
	n.expect(`{"ping":{"status":"ok","response":{"b":2}}}`)
	n.expect(`{"close":1005}`) // the client's own disconnect
	n.expect(`done`)
	n.finish()
}

// lpPauser holds long-poll GETs while paused, as a network that stalls.
type lpPauser struct {
	h      http.Handler
	mu     sync.Mutex
	resume chan struct{} // nil when not paused
}

func (p *lpPauser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	resume := p.resume
	p.mu.Unlock()
	if resume != nil && r.Method == http.MethodGet {
		select {
		case <-resume:
		case <-r.Context().Done():
			return
		}
	}
	p.h.ServeHTTP(w, r)
}

func (p *lpPauser) pause() {
	p.mu.Lock()
	p.resume = make(chan struct{})
	p.mu.Unlock()
}

func (p *lpPauser) unpause() {
	p.mu.Lock()
	close(p.resume)
	p.resume = nil
	p.mu.Unlock()
}

func TestLongPollNodeSessionExpiry(t *testing.T) {
	lpRequireNode(t)
	leakcheck.Check(t)
	var p *lpPauser
	var rec *lpRecorder
	env := newLPEnvWrapped(t, &plume.Socket{LongPollWindow: time.Second}, plume.Options{}, func(ep *plume.Endpoint) http.Handler {
		p = &lpPauser{h: ep}
		rec = newLPRecorder(p)
		return rec
	})
	n := lpRunNode(t, "expire.mjs", lpSocketURL(env.srv))
	n.diag = rec.String
	n.expect(`joined`)
	// Polls stall: the session expires 1.5 windows after the last one.
	p.pause()
	env.expectReason("room:exp shutdown: closed")
	p.unpause()
	n.expect(`{"close":3410,"reason":"session_gone"}`)
	n.expect(`rejoined`)
	n.expect(`{"ping":{"status":"ok","response":{"after":"rejoin"}}}`)
	n.expect(`{"close":1005}`) // the client's own disconnect
	n.expect(`done`)
	n.finish()
}

func TestLongPollNodeFallback(t *testing.T) {
	lpRequireNode(t)
	leakcheck.Check(t)
	var mu sync.Mutex
	wsAttempts := 0
	var rec *lpRecorder
	env := newLPEnvWrapped(t, &plume.Socket{}, plume.Options{}, func(ep *plume.Endpoint) http.Handler {
		// WebSocket upgrades are refused, as by a proxy that blocks them.
		rec = newLPRecorder(ep)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/websocket") {
				mu.Lock()
				wsAttempts++
				mu.Unlock()
				w.WriteHeader(http.StatusForbidden)
				return
			}
			rec.ServeHTTP(w, r)
		})
	})
	n := lpRunNode(t, "fallback.mjs", lpSocketURL(env.srv))
	n.diag = rec.String
	n.expect(`{"joined":"LongPoll"}`)
	n.expect(`{"whoami":{"status":"ok","response":{"auth":"","transport":"longpoll","x":""}}}`)
	n.expect(`done`)
	n.finish()
	mu.Lock()
	defer mu.Unlock()
	if wsAttempts == 0 {
		t.Fatal("the client never tried the WebSocket")
	}
}
