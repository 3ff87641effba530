package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
)

// chromiumPath is Debian's Chromium, which playwright-core drives.
const chromiumPath = "/usr/bin/chromium"

// TestBrowser opens a campaign page twice in Chromium, donates in one and
// sees it in the other, checks the presence list, the dashboard and the
// recovery after a server restart, and saves docs/demo.png.
func TestBrowser(t *testing.T) {
	leakcheck.Check(t)
	node := requireNode(t, "playwright-core")
	if _, err := os.Stat(chromiumPath); err != nil {
		skipOrFail(t, chromiumPath+" is missing (apt-get install chromium)")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "donations.db")
	shots := filepath.Join(dir, "shots")
	if err := os.Mkdir(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	demoPNG := filepath.Join(repoRoot(t), "docs", "demo.png")
	// A fixed SECRET_KEY_BASE, so that the pages' user tokens still verify
	// after the restart.
	env := []string{"ADMIN_TOKEN=browser-token", "SECRET_KEY_BASE=browser-secret-key-base-0123456789abcdef"}
	s := startServer(t, "127.0.0.1:0", db, env)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "browser.mjs"), s.URL, "browser-token", demoPNG, shots)
	cmd.WaitDelay = 5 * time.Second
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out []string
	done := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out = append(out, line)
		switch {
		case line == "STOP":
			s.stop()
			stdin.Write([]byte("stopped\n"))
		case line == "START":
			// The same address, so the open pages reconnect to it.
			s = startServer(t, s.Addr, db, env)
			stdin.Write([]byte("started\n"))
		case line == "DONE":
			done = true
		}
	}
	stdin.Close()
	werr := cmd.Wait()
	report := strings.Join(out, "\n")
	if werr != nil || !done {
		t.Fatalf("browser.mjs: %v\n%s\nstderr:\n%s", werr, report, stderr.String())
	}
	t.Logf("browser.mjs:\n%s", report)
	if st, err := os.Stat(demoPNG); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", demoPNG, err)
	}
	if os.Getenv("PLUME_KEEP_SHOTS") != "" {
		for _, f := range []string{"campaign-phone.png", "dashboard.png", "dashboard-phone.png", "index.png", "index-phone.png"} {
			b, _ := os.ReadFile(filepath.Join(shots, f))
			os.WriteFile(filepath.Join(os.Getenv("PLUME_KEEP_SHOTS"), f), b, 0o644)
		}
	}
	s.stop()
}
