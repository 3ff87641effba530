package plume

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/plumehq/plume/telemetry"
	"github.com/plumehq/plume/wire"
)

// connect runs the socket's checks and its Connect callback for a new
// connection, as Phoenix does before upgrading: vsn, origin, then connect.
// It returns the Conn (not yet started) or an error to answer with 403.
func (e *Endpoint) connect(r *http.Request, s *Socket, transport, authToken string) (*Conn, error) {
	params := ParseParams(r.URL.RawQuery)
	vsn, _ := params["vsn"].(string)
	if _, present := params["vsn"]; present && vsn == "" {
		return nil, wire.ErrUnsupportedVsn
	}
	ser, err := wire.Negotiate(vsn)
	if err != nil {
		e.refused(transport, "vsn", params, err)
		return nil, err
	}
	if !s.checkOrigin(r) {
		e.log.Error("could not check origin for Phoenix.Socket transport", "origin", r.Header.Get("Origin"), "transport", transport)
		e.refused(transport, "origin", params, errOrigin)
		return nil, errOrigin
	}
	c := &Conn{
		Params:   params,
		Info:     connectInfo(r, authToken),
		endpoint: e,
		socket:   s,
		ser:      ser,
		tname:    transport,
	}
	err = e.runConnect(r.Context(), s, c, transport)
	c.Info.Request = nil
	if err != nil {
		return nil, &connectRefusal{err}
	}
	return c, nil
}

// runConnect calls the socket's Connect callback and reports the outcome.
func (e *Endpoint) runConnect(ctx context.Context, s *Socket, c *Conn, transport string) error {
	start := time.Now()
	if s.Connect != nil {
		if err := callConnect(ctx, s, c); err != nil {
			e.refused(transport, "connect", c.Params, err)
			return err
		}
	}
	if e.observing() {
		e.emit(&telemetry.Event{Kind: telemetry.SocketConnected, Transport: transport, SocketID: c.ID,
			Params: map[string]any(c.Params), Duration: time.Since(start)})
	}
	return nil
}

func (e *Endpoint) refused(transport, reason string, params Params, err error) {
	if e.observing() {
		e.emit(&telemetry.Event{Kind: telemetry.SocketRefused, Transport: transport, Reason: reason,
			Params: map[string]any(params), Err: err})
	}
}

var errOrigin = errors.New("plume: origin not allowed")

func callConnect(ctx context.Context, s *Socket, c *Conn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("connect panicked")
		}
	}()
	return s.Connect(ctx, c)
}

func connectInfo(r *http.Request, authToken string) ConnectInfo {
	info := ConnectInfo{UserAgent: r.UserAgent(), AuthToken: authToken, Request: r}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		info.Peer = ap
	}
	u := *r.URL
	u.Host = r.Host
	u.Scheme = "http"
	if r.TLS != nil {
		u.Scheme = "https"
	}
	info.URI = &u
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-") {
			if info.XHeaders == nil {
				info.XHeaders = http.Header{}
			}
			info.XHeaders[k] = v
		}
	}
	return info
}

// authTokenFromProtocols extracts phoenix.js's authToken from the offered
// subprotocols ("base64url.bearer.phx." + base64 without padding, despite
// the name) and reports whether "phoenix" was offered.
func authTokenFromProtocols(h http.Header) (token string, offered []string) {
	const prefix = "base64url.bearer.phx."
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if enc, ok := strings.CutPrefix(p, prefix); ok {
				if t, err := decodeB64NoPad(enc); err == nil {
					token = t
				}
				continue
			}
			offered = append(offered, p)
		}
	}
	return token, offered
}

var _ = url.Parse
