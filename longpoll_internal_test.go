package plume

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
)

func TestLPTokenSignVerify(t *testing.T) {
	lp := &longPoll{key: lpKey([]byte("secret"))}
	now := time.Now().UnixMilli()
	want := lpToken{node: "node-1", id: newLPID(), expires: now + 1000}
	tok := lp.sign(want)
	got, err := lp.verify(tok, now)
	if err != nil || got != want {
		t.Fatalf("verify: %+v %v", got, err)
	}
	if _, err := lp.verify(tok, want.expires); err != errLPTokenExpired {
		t.Fatalf("at expiry: want errLPTokenExpired, got %v", err)
	}
	// Any change to any byte is refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(tok) {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%len(alphabet)], '=', '+'} {
			b := []byte(tok)
			b[i] = c
			if got, err := lp.verify(string(b), now); err == nil {
				t.Fatalf("byte %d changed to %q: accepted as %+v", i, c, got)
			}
		}
	}
	for _, bad := range []string{"", ".", "a.b", tok + ".x", tok[:len(tok)-1], strings.Repeat("A", 2000)} {
		if _, err := lp.verify(bad, now); err != errLPTokenInvalid {
			t.Fatalf("%q: want errLPTokenInvalid, got %v", bad, err)
		}
	}
	// Another key, or a random one, refuses it; the same secret accepts it.
	if _, err := (&longPoll{key: lpKey([]byte("other"))}).verify(tok, now); err != errLPTokenInvalid {
		t.Fatalf("other key: %v", err)
	}
	if _, err := (&longPoll{key: lpKey(nil)}).verify(tok, now); err != errLPTokenInvalid {
		t.Fatalf("random key: %v", err)
	}
	if _, err := (&longPoll{key: lpKey([]byte("secret"))}).verify(tok, now); err != nil {
		t.Fatalf("same secret: %v", err)
	}
}

type lpTestResp struct {
	Status int    `json:"status"`
	Token  string `json:"token"`
}

func lpTestDo(t *testing.T, method, u, body string) lpTestResp {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var r lpTestResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s %s: %q", method, u, b)
	}
	return r
}

// TestLPExpiredToken: a token past its expiry never reaches its session,
// though the session lives on, and polls hand out a re-signed token once
// half of its life has passed.
func TestLPExpiredToken(t *testing.T) {
	leakcheck.Check(t)
	ep := NewEndpoint(Options{})
	var skew atomic.Int64
	ep.lp.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	ep.Mount("/socket", &Socket{LongPollWindow: 5 * time.Second})
	srv := httptest.NewServer(ep)
	defer func() {
		ep.Shutdown(context.Background())
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	}()
	base := srv.URL + "/socket/longpoll?vsn=2.0.0&token="
	hb := `[null,"1","phoenix","heartbeat",{}]`
	r := lpTestDo(t, "GET", base, "")
	t1 := r.Token
	if r.Status != 410 || t1 == "" {
		t.Fatalf("open: %+v", r)
	}
	var id lpID
	ep.lp.mu.Lock()
	for k := range ep.lp.sessions {
		id = k
	}
	ep.lp.mu.Unlock()
	// A token for the live session that expired a moment ago.
	expired := ep.lp.sign(lpToken{node: ep.lp.node(), id: id, expires: ep.lp.now().UnixMilli() - 1})
	if r := lpTestDo(t, "POST", base+expired, hb); r.Status != 410 {
		t.Fatalf("POST with expired token: %+v", r)
	}
	if r := lpTestDo(t, "GET", base+expired, ""); r.Status != 410 || r.Token == t1 {
		t.Fatalf("GET with expired token: %+v", r)
	}
	if r := lpTestDo(t, "POST", base+t1, hb); r.Status != 200 {
		t.Fatalf("POST with live token: %+v", r)
	}
	// Past half its life, the poll re-signs the token.
	skew.Add(int64(31 * time.Minute))
	if r := lpTestDo(t, "POST", base+t1, hb); r.Status != 200 {
		t.Fatalf("POST with live token: %+v", r)
	}
	r = lpTestDo(t, "GET", base+t1, "")
	t2 := r.Token
	if r.Status != 200 || t2 == t1 || t2 == "" {
		t.Fatalf("poll: want a new token, got %+v", r)
	}
	skew.Add(int64(30 * time.Minute)) // t1 has expired, t2 has not
	if r := lpTestDo(t, "POST", base+t1, hb); r.Status != 410 {
		t.Fatalf("POST with the expired first token: %+v", r)
	}
	if r := lpTestDo(t, "POST", base+t2, hb); r.Status != 200 {
		t.Fatalf("POST with the new token: %+v", r)
	}
}
