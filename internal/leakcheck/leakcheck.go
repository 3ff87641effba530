// Package leakcheck fails a test that leaves goroutines behind. It is a
// small stand-in for goleak, so the core module needs no test dependency.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutines running now and, at cleanup, fails t if new
// ones are still running after a grace period. Call it first in a test.
func Check(t testing.TB) {
	t.Helper()
	before := snapshot()
	t.Cleanup(func() {
		var extra []string
		deadline := time.Now().Add(5 * time.Second)
		for {
			extra = extra[:0]
			for id, stack := range snapshot() {
				if _, ok := before[id]; !ok && !ignorable(stack) {
					extra = append(extra, stack)
				}
			}
			if len(extra) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(extra) > 0 {
			t.Errorf("%d goroutine(s) leaked:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}

func snapshot() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		// "goroutine 12 [running]:"
		fields := strings.Fields(header)
		if len(fields) < 2 {
			continue
		}
		out[fields[1]] = g
	}
	return out
}

func ignorable(stack string) bool {
	for _, s := range []string{
		"testing.tRunner", "testing.(*T).Run", "runtime.goexit0", "created by testing.",
		"net/http.(*persistConn)", "net/http.(*Transport)", "internal/poll.runtime_pollWait\n",
		"os/signal.signal_recv", "runtime.ensureSigM",
	} {
		if strings.Contains(stack, s) && !strings.Contains(stack, "plume") {
			return true
		}
	}
	return false
}
