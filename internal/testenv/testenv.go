// Package testenv decides what a test does when something it needs from the
// machine is missing: skip with a one-line reason on a developer's machine,
// fail in CI, where PLUME_REQUIRE_SERVICES=1 says everything must be there.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Required reports whether CI asked for every service to be present.
func Required() bool { return os.Getenv("PLUME_REQUIRE_SERVICES") == "1" }

// SkipOrFail skips t with reason, or fails it when services are required.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

// TCP requires something listening at addr; name says what, for the reason.
func TCP(t testing.TB, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		SkipOrFail(t, "no "+name+" at "+addr+": "+err.Error())
		return
	}
	c.Close()
}

// Node requires node and the repository's npm packages (phoenix and ws, and
// any others named), and returns the node binary and the node_modules
// directory, found by walking up from the test's directory.
func Node(t testing.TB, packages ...string) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not installed")
		return "", ""
	}
	modules = NodeModules()
	if modules == "" {
		SkipOrFail(t, "node_modules is missing (run make js)")
		return "", ""
	}
	for _, pkg := range append([]string{"phoenix", "ws"}, packages...) {
		if _, err := os.Stat(filepath.Join(modules, pkg, "package.json")); err != nil {
			SkipOrFail(t, "node_modules/"+pkg+" is missing (run make js)")
			return "", ""
		}
	}
	return node, modules
}

// NodeModules returns the nearest node_modules directory above the working
// directory, or "".
func NodeModules() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "node_modules")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
