package presence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/plumehq/plume/internal/testenv"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumehq/plume/internal/leakcheck"
	"github.com/plumehq/plume/presence"
)

// requireNode returns the node binary, or skips (fails under
// PLUME_REQUIRE_SERVICES=1) when node or the phoenix client is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, _ := testenv.Node(t)
	return node
}

// runScript runs testdata/<script> with args and returns the JSON lines it
// printed; it fails the test on a failed check or a non-zero exit.
func runScript(t *testing.T, node, script string, args ...string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var evs []map[string]any
	done := false
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		evs = append(evs, ev)
		switch ev["ev"] {
		case "done":
			done = true
		case "fail":
			t.Errorf("phoenix.js: %s", ev["error"])
		}
	}
	if err != nil || !done {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return evs
}

// TestPhoenixJS runs testdata/presence.mjs, which drives the official
// phoenix.js Presence class: two users see each other, onJoin and onLeave
// get the right presences, one user on two sockets is one key with two
// metas, an update is seen with phx_ref_prev, a reconnect and rejoin
// leaves the client's list right, and bursts of many keys (as coalesced
// diffs with coalescing on) apply correctly. Each client's list is
// compared with the server's at every step.
func TestPhoenixJS(t *testing.T) {
	node := requireNode(t)
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{
		{"no coalescing", 0},
		{"coalescing", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			s := newServer(t, presence.Options{CoalesceWindow: tc.window})
			evs := runScript(t, node, "presence.mjs", s.wsURL(), `{"reconnectMs":300}`)
			checks, maxKeys := 0, 0.0
			for _, ev := range evs {
				switch ev["ev"] {
				case "ok":
					checks++
				case "done":
					maxKeys, _ = ev["maxDiffKeys"].(float64)
				}
			}
			t.Logf("%d checks passed; largest diff had %v keys", checks, maxKeys)
			if tc.window > 0 && maxKeys < 2 {
				t.Errorf("with coalescing no diff had more than one key")
			}
			// Every socket closed: everyone left.
			eventually(t, "the room to empty", func() bool { return len(s.tr.List("room:e2e")) == 0 })
		})
	}
}

// TestPhoenixJSCluster runs testdata/cluster.mjs: phoenix.js clients on two
// nodes whose trackers replicate see each other, updates and leaves.
func TestPhoenixJSCluster(t *testing.T) {
	node := requireNode(t)
	leakcheck.Check(t)
	c := newCluster(t)
	n1, n2 := c.start("node1", fastReplication()), c.start("node2", fastReplication())
	s1, s2 := serve(t, n1.ep, n1.tr), serve(t, n2.ep, n2.tr)
	runScript(t, node, "cluster.mjs", s1.wsURL(), s2.wsURL())
	eventually(t, "the room to empty on both nodes", func() bool {
		return len(n1.tr.List("room:cluster")) == 0 && len(n2.tr.List("room:cluster")) == 0
	})
}
