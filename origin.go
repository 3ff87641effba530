package plume

import (
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
)

// OriginChecker decides whether a request's Origin is allowed. It is called
// only when the request has an Origin header; origin is that header parsed.
type OriginChecker func(r *http.Request, origin *url.URL) bool

// AllowAnyOrigin disables the check (Phoenix's check_origin: false).
func AllowAnyOrigin(*http.Request, *url.URL) bool { return true }

// SameHost allows an Origin whose host equals the request's Host, ignoring
// scheme and port. It is the default, as Phoenix's check_origin: true
// compares the host with the endpoint's configured host.
func SameHost(r *http.Request, origin *url.URL) bool {
	return strings.EqualFold(origin.Hostname(), hostOnly(r.Host))
}

// SameOrigin requires the Origin's scheme, host and port to equal the
// request's own (Phoenix's check_origin: :conn).
func SameOrigin(r *http.Request, origin *url.URL) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(origin.Scheme, scheme) &&
		strings.EqualFold(origin.Hostname(), hostOnly(r.Host)) &&
		portOf(origin.Scheme, origin.Port()) == portOf(scheme, portOnly(r.Host))
}

// AllowOrigins allows the listed origins, with Phoenix's rules: each entry
// is "scheme://host:port", and a part left out matches anything ("//host"
// allows any scheme and port; "https://host" means port 443); a host written
// "*.example.com" matches example.com and every subdomain. An entry without a
// host panics, as Phoenix refuses it at boot.
func AllowOrigins(origins ...string) OriginChecker {
	type allowed struct{ scheme, host, port string }
	var list []allowed
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Hostname() == "" {
			panic("plume: invalid origin " + o)
		}
		a := allowed{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
		if a.port == "" && a.scheme != "" {
			a.port = defaultPort(a.scheme)
		}
		list = append(list, a)
	}
	return func(_ *http.Request, origin *url.URL) bool {
		scheme := strings.ToLower(origin.Scheme)
		host := strings.ToLower(origin.Hostname())
		port := portOf(scheme, origin.Port())
		for _, a := range list {
			if a.scheme != "" && a.scheme != scheme {
				continue
			}
			if a.port != "" && a.port != port {
				continue
			}
			if rest, ok := strings.CutPrefix(a.host, "*."); ok {
				if host == rest || strings.HasSuffix(host, "."+rest) {
					return true
				}
				continue
			}
			if a.host == host {
				return true
			}
		}
		return false
	}
}

// checkOrigin applies the socket's checker; a missing header passes and an
// unparsable one fails.
func (s *Socket) checkOrigin(r *http.Request) bool {
	h := r.Header.Get("Origin")
	if h == "" {
		return true
	}
	check := s.CheckOrigin
	if check == nil {
		check = SameHost
	}
	u, err := url.Parse(h)
	if err != nil || u.Hostname() == "" {
		// Only a disabled check (Phoenix's check_origin: false skips it)
		// lets an origin without a host through: "null", "file://".
		return reflect.ValueOf(check).Pointer() == reflect.ValueOf(AllowAnyOrigin).Pointer()
	}
	return check(r, u)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func portOnly(hostport string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil {
		return p
	}
	return ""
}

func defaultPort(scheme string) string {
	switch strings.ToLower(scheme) {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

func portOf(scheme, port string) string {
	if port != "" {
		return port
	}
	return defaultPort(scheme)
}
