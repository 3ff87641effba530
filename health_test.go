package plume_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
)

func healthGet(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusMethodNotAllowed && cc != "no-store" {
		t.Fatalf("%s %s: Cache-Control %q", method, url, cc)
	}
	return resp.StatusCode, string(b)
}

func TestHealthHandlersThroughShutdown(t *testing.T) {
	leakcheck.Check(t)
	defer http.DefaultClient.CloseIdleConnections()
	sock := &plume.Socket{}
	sock.Channel("room:*", func() plume.ChannelHandler { return guardedRoom{} })
	// A long drain interval keeps the second batch waiting, so readiness
	// can be checked while connections are still open.
	ep := plume.NewEndpoint(plume.Options{DrainBatchSize: 1, DrainInterval: time.Hour})
	ep.Mount("/socket", sock)
	mux := http.NewServeMux()
	mux.Handle("/socket/", ep)
	mux.Handle("/healthz", ep.LivenessHandler())
	mux.Handle("/readyz", ep.ReadinessHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := healthGet(t, http.MethodGet, srv.URL+path); code != 200 || body != "ok\n" {
			t.Fatalf("GET %s = %d %q before shutdown", path, code, body)
		}
		if code, body := healthGet(t, http.MethodHead, srv.URL+path); code != 200 || body != "" {
			t.Fatalf("HEAD %s = %d %q", path, code, body)
		}
		if code, _ := healthGet(t, http.MethodPost, srv.URL+path); code != http.StatusMethodNotAllowed {
			t.Fatalf("POST %s = %d, want 405", path, code)
		}
	}

	a := dialRaw(t, srv, "vsn=2.0.0", nil)
	defer a.Close()
	b := dialRaw(t, srv, "vsn=2.0.0", nil)
	defer b.Close()
	for ep.Connections() < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ep.Shutdown(ctx) }()
	// The first batch closes one connection; the other waits for the
	// next batch, an hour away.
	for !ep.Draining() {
		time.Sleep(time.Millisecond)
	}
	if code, body := healthGet(t, http.MethodGet, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Fatalf("readyz while draining = %d %q", code, body)
	}
	if code, _ := healthGet(t, http.MethodHead, srv.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("HEAD readyz while draining = %d", code)
	}
	if code, body := healthGet(t, http.MethodGet, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz while draining = %d %q", code, body)
	}
	if ep.Connections() == 0 {
		t.Fatal("every connection closed before the readiness check")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
}

func ExampleEndpoint_ReadinessHandler() {
	ep := plume.NewEndpoint(plume.Options{})
	ready := ep.ReadinessHandler()

	check := func() {
		rec := httptest.NewRecorder()
		ready.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	check()
	ep.Shutdown(context.Background()) // no connections: returns at once
	check()
	// Output:
	// 200 ok
	// 503 draining
}
