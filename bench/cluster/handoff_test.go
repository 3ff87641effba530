package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
)

// A connection accepted by the lb is served by the node it was handed to,
// which reads the request itself.
func TestHandOver(t *testing.T) {
	leakcheck.Check(t)
	sock := filepath.Join(t.TempDir(), "n.sock")
	hl, err := newHandoffListener(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "node saw "+r.URL.Path)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(hl) }()
	defer func() {
		srv.Close()
		<-served
	}()

	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handOver(uc, c.(*net.TCPConn))
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/a", "/b"} {
		resp, err := client.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "node saw "+path {
			t.Fatalf("got %q", b)
		}
	}
}
