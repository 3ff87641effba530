package plume_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/internal/leakcheck"
)

// originCase is one Origin header checked against a request.
type originCase struct {
	origin string
	want   bool
}

func checkOrigins(t *testing.T, name string, check plume.OriginChecker, r *http.Request, cases []originCase) {
	t.Helper()
	for _, tc := range cases {
		u, err := url.Parse(tc.origin)
		if err != nil {
			t.Fatalf("%s: bad test origin %q: %v", name, tc.origin, err)
		}
		if got := check(r, u); got != tc.want {
			t.Errorf("%s: Host %q TLS %v Origin %q = %v, want %v", name, r.Host, r.TLS != nil, tc.origin, got, tc.want)
		}
	}
}

func originRequest(host string, tlsOn bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/socket/websocket", nil)
	r.Host = host
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	} else {
		r.TLS = nil
	}
	return r
}

// SameHost is Phoenix's check_origin: true: the host alone, any scheme and
// port.
func TestSameHost(t *testing.T) {
	checkOrigins(t, "SameHost", plume.SameHost, originRequest("example.com:4000", false), []originCase{
		{"http://example.com", true},
		{"https://example.com", true},
		{"http://example.com:4000", true},
		{"https://example.com:1234", true},
		{"ws://example.com", true},
		{"http://EXAMPLE.COM", true},
		{"http://evil.com", false},
		{"http://sub.example.com", false},
		{"http://example.com.evil.com", false},
		{"http://evilexample.com", false},
		{"http://127.0.0.1:4000", false},
	})
	checkOrigins(t, "SameHost", plume.SameHost, originRequest("example.com", true), []originCase{
		{"http://example.com", true},
		{"https://example.com:8443", true},
		{"https://other.com", false},
	})
	checkOrigins(t, "SameHost", plume.SameHost, originRequest("[::1]:4000", false), []originCase{
		{"http://[::1]:5000", true},
		{"http://[::1]", true},
		{"http://[::2]:4000", false},
		{"http://localhost:4000", false},
	})
}

// SameOrigin is Phoenix's check_origin: :conn: scheme, host and port.
func TestSameOrigin(t *testing.T) {
	checkOrigins(t, "SameOrigin", plume.SameOrigin, originRequest("example.com:4000", false), []originCase{
		{"http://example.com:4000", true},
		{"http://EXAMPLE.com:4000", true},
		{"http://example.com", false},
		{"https://example.com:4000", false},
		{"http://example.com:4001", false},
		{"http://other.com:4000", false},
	})
	// No port in Host: the scheme's default port.
	checkOrigins(t, "SameOrigin", plume.SameOrigin, originRequest("example.com", false), []originCase{
		{"http://example.com", true},
		{"http://example.com:80", true},
		{"http://example.com:8080", false},
		{"https://example.com", false},
	})
	checkOrigins(t, "SameOrigin", plume.SameOrigin, originRequest("example.com", true), []originCase{
		{"https://example.com", true},
		{"https://example.com:443", true},
		{"http://example.com", false},
		{"http://example.com:443", false},
		{"https://example.com:8443", false},
	})
	checkOrigins(t, "SameOrigin", plume.SameOrigin, originRequest("example.com:443", true), []originCase{
		{"https://example.com", true},
	})
}

// AllowOrigins is Phoenix's check_origin: [list]: each part given must
// match, "https://host" means port 443, "//host" any scheme and port, and
// "*.host" the host and its subdomains.
func TestAllowOrigins(t *testing.T) {
	r := originRequest("ignored.example:4000", false)
	checkOrigins(t, "list", plume.AllowOrigins("https://example.com", "//another.com:888", "//*.other.com", "http://localhost:4000"), r, []originCase{
		// scheme and default port
		{"https://example.com", true},
		{"https://example.com:443", true},
		{"https://EXAMPLE.com", true},
		{"https://example.com:8443", false},
		{"http://example.com", false},
		{"http://example.com:443", false},
		{"https://sub.example.com", false},
		// "//host:port": any scheme
		{"http://another.com:888", true},
		{"https://another.com:888", true},
		{"http://another.com", false},
		{"http://another.com:889", false},
		// wildcard: the domain itself and any subdomain, any scheme and port
		{"http://other.com", true},
		{"https://sub.other.com:1234", true},
		{"http://a.b.other.com", true},
		{"http://evilother.com", false},
		{"http://other.com.evil.com", false},
		{"http://other.co", false},
		// explicit port
		{"http://localhost:4000", true},
		{"http://localhost", false},
		{"https://localhost:4000", false},
	})
	checkOrigins(t, "wildcard", plume.AllowOrigins("//*.x.com"), r, []originCase{
		{"https://x.com", true},
		{"https://sub.x.com", true},
		{"http://deep.sub.x.com:8080", true},
		{"https://evilx.com", false},
		{"https://x.com.evil", false},
		{"https://xx.com", false},
	})
	checkOrigins(t, "http default port", plume.AllowOrigins("http://example.com"), r, []originCase{
		{"http://example.com", true},
		{"http://example.com:80", true},
		{"http://example.com:8080", false},
		{"ws://example.com", false},
	})
	checkOrigins(t, "https wildcard", plume.AllowOrigins("https://*.example.com"), r, []originCase{
		{"https://example.com", true},
		{"https://a.example.com", true},
		{"https://a.example.com:444", false},
		{"http://a.example.com", false},
	})
	// An entry without a host is refused when configured, as in Phoenix.
	for _, bad := range []string{"example.com", "", "https://", "*.x.com", "//:80"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AllowOrigins(%q) did not panic", bad)
				}
			}()
			plume.AllowOrigins(bad)
		}()
	}
}

func TestAllowAnyOrigin(t *testing.T) {
	checkOrigins(t, "AllowAnyOrigin", plume.AllowAnyOrigin, originRequest("example.com", false), []originCase{
		{"http://evil.com", true},
		{"https://example.com:1", true},
	})
}

// TestCheckOriginHTTP checks origins through the WebSocket endpoint: the
// upgrade is refused with 403 before Connect runs.
func TestCheckOriginHTTP(t *testing.T) {
	leakcheck.Check(t)
	var calls atomic.Int32
	servers := map[string]*ptServer{
		"default": newPTServer(t, ptConfig{}),
		"custom": newPTServer(t, ptConfig{socket: func(s *plume.Socket) {
			s.CheckOrigin = func(r *http.Request, o *url.URL) bool {
				calls.Add(1)
				return o.Hostname() == "trusted.io" && r.Header.Get("X-Token") == "ok"
			}
		}}),
		"list": newPTServer(t, ptConfig{socket: func(s *plume.Socket) {
			s.CheckOrigin = plume.AllowOrigins("https://app.example.com", "//*.example.org")
		}}),
		"conn": newPTServer(t, ptConfig{socket: func(s *plume.Socket) { s.CheckOrigin = plume.SameOrigin }}),
		"any":  newPTServer(t, ptConfig{socket: func(s *plume.Socket) { s.CheckOrigin = plume.AllowAnyOrigin }}),
	}
	self := func(name string) string { return servers[name].srv.URL } // http://127.0.0.1:port
	port := func(name string) string { return self(name)[strings.LastIndexByte(self(name), ':')+1:] }
	cases := []struct {
		server string
		origin string // "" sends no Origin header
		header http.Header
		want   int
	}{
		{"default", "", nil, http.StatusSwitchingProtocols},
		{"default", "http://127.0.0.1:9", nil, http.StatusSwitchingProtocols},
		{"default", "https://127.0.0.1", nil, http.StatusSwitchingProtocols},
		{"default", "http://localhost:" + port("default"), nil, http.StatusForbidden},
		{"default", "http://evil.com", nil, http.StatusForbidden},
		{"default", "null", nil, http.StatusForbidden},
		{"default", "http://[::1", nil, http.StatusForbidden},
		{"default", "http://exa mple.com", nil, http.StatusForbidden},
		{"custom", "", nil, http.StatusSwitchingProtocols},
		{"custom", "https://trusted.io", http.Header{"X-Token": {"ok"}}, http.StatusSwitchingProtocols},
		{"custom", "https://trusted.io", nil, http.StatusForbidden},
		{"custom", "https://127.0.0.1", http.Header{"X-Token": {"ok"}}, http.StatusForbidden},
		{"list", "https://app.example.com", nil, http.StatusSwitchingProtocols},
		{"list", "http://app.example.com", nil, http.StatusForbidden},
		{"list", "http://example.org:81", nil, http.StatusSwitchingProtocols},
		{"list", "http://cdn.example.org", nil, http.StatusSwitchingProtocols},
		{"list", "http://badexample.org", nil, http.StatusForbidden},
		{"list", "http://127.0.0.1:" + port("list"), nil, http.StatusForbidden},
		{"conn", self("conn"), nil, http.StatusSwitchingProtocols},
		{"conn", "https://127.0.0.1:" + port("conn"), nil, http.StatusForbidden},
		{"conn", "http://127.0.0.1", nil, http.StatusForbidden},
		{"any", "http://evil.com", nil, http.StatusSwitchingProtocols},
		// check_origin: false skips the check entirely, so origins without a
		// host (sandboxed frames, file:// and app webviews) pass too.
		{"any", "null", nil, http.StatusSwitchingProtocols},
		{"any", "file://", nil, http.StatusSwitchingProtocols},
		{"any", "http://[::1", nil, http.StatusSwitchingProtocols},
	}
	for _, tc := range cases {
		s := servers[tc.server]
		hdr := http.Header{}
		for k, v := range tc.header {
			hdr[k] = v
		}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		hs := tryUpgrade(t, s.srv, "vsn=2.0.0", hdr)
		if hs.status != tc.want {
			t.Errorf("%s: Origin %q: status %d, want %d", tc.server, tc.origin, hs.status, tc.want)
			continue
		}
		if hs.status == http.StatusSwitchingProtocols {
			<-s.conns // Connect ran
		} else if hs.body != "" {
			t.Errorf("%s: Origin %q: 403 body %q, want none", tc.server, tc.origin, hs.body)
		}
	}
	// The custom checker runs only for requests with a parsable Origin.
	if n := calls.Load(); n != 3 {
		t.Errorf("custom checker called %d times, want 3", n)
	}
	// A refused origin never reaches Connect.
	for name, s := range servers {
		select {
		case c := <-s.conns:
			t.Errorf("%s: unexpected Connect %v", name, c.params)
		default:
		}
	}
}
