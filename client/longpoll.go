package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/plumehq/plume/wire"
)

// Transports a Socket can use (Options.Transport).
const (
	TransportWebSocket = "websocket"
	TransportLongPoll  = "longpoll"
)

// The long-poll transport, as phoenix.js's LongPoll speaks it
// (phoenix-protocol.md §3): a GET without a session token opens a session
// ({"status":410,"token":T}); GETs with the token then return buffered
// messages (200) or nothing within the server's window (204), and 410 once
// the session is gone, which closes the connection with 3410 so that the
// socket reconnects and its channels rejoin. Sends are POSTed as ndjson, at
// most 100 lines per request, one request at a time; binary messages travel
// as base64 lines. The server cannot send binary messages over long-poll.
// There are no heartbeats: each poll shows the session is alive.

// Long-poll close codes, as phoenix.js reports them.
const (
	closeLPTimeout     = 1005
	closeLPForbidden   = 1008
	closeLPServerError = 1011
	closeLPSessionGone = 3410
)

const lpMaxBatch = 100

func newLongPollClient(o *Options) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.NetDial != nil {
		tr.DialContext = o.NetDial
	}
	if o.TLSConfig != nil {
		tr.TLSClientConfig = o.TLSConfig
	}
	return &http.Client{Transport: tr}
}

// lpLink is the long-poll session of one conn.
type lpLink struct {
	c         *conn
	s         *Socket
	ctx       context.Context
	cancel    context.CancelFunc
	base      *url.URL
	authToken *string

	mu      sync.Mutex
	token   string
	queue   [][]byte
	posting bool
	ended   *CloseEvent // why the session ended, first reason wins
	err     error       // the error that ended it, if any
}

type lpResponse struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

// runLongPoll opens a session and polls it until it ends. It runs on the
// conn's dial goroutine.
func (c *conn) runLongPoll(ctx context.Context) {
	s := c.s
	lp := &lpLink{c: c, s: s, ctx: ctx, cancel: c.cancelDial}
	err := lp.prepare()
	var resp lpResponse
	if err == nil {
		resp, err = lp.get()
	}
	if err == nil && resp.Status != 410 {
		err = &HandshakeError{Status: resp.Status}
	}
	s.mu.Lock()
	if err != nil || c.state != connConnecting {
		lp.cancel()
		if c.closing {
			err = nil
		}
		s.connClosed(c, CloseEvent{Code: CloseAbnormal}, err)
		s.mu.Unlock()
		return
	}
	lp.token = resp.Token
	c.lp = lp
	c.state = connOpen
	c.opened = true
	s.onConnOpen(c)
	s.mu.Unlock()

	ev, err := lp.pollLoop()
	lp.cancel()
	s.mu.Lock()
	s.connClosed(c, ev, err)
	s.mu.Unlock()
}

// prepare computes the session URL: the socket's URL with /websocket
// turned into /longpoll and http(s) for ws(s).
func (lp *lpLink) prepare() error {
	s := lp.s
	endpoint := s.endpoint
	if s.opts.URL != nil {
		endpoint = s.opts.URL()
	}
	var params map[string]any
	if s.opts.Params != nil {
		params = s.opts.Params()
	}
	raw, err := endpointURL(endpoint, params, s.ser.Vsn())
	if err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path = strings.TrimSuffix(u.Path, "/websocket") + "/longpoll"
	lp.base = u
	if s.opts.AuthToken != nil {
		t := s.opts.AuthToken()
		lp.authToken = &t
	}
	return nil
}

// url is the base URL with the session token, once there is one.
func (lp *lpLink) url() string {
	lp.mu.Lock()
	token := lp.token
	lp.mu.Unlock()
	u := *lp.base
	if token != "" {
		u.RawQuery += "&token=" + url.QueryEscape(token)
	}
	return u.String()
}

// errTimeout marks a request that ran out of LongPollTimeout.
var errTimeout = errors.New("client: long-poll request timed out")

func (lp *lpLink) do(method, contentType string, body []byte) (lpResponse, error) {
	ctx, cancel := context.WithTimeout(lp.ctx, lp.s.opts.LongPollTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, lp.url(), rd)
	if err != nil {
		return lpResponse{}, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if lp.authToken != nil {
		req.Header.Set("X-Phoenix-AuthToken", *lp.authToken)
	}
	for k, v := range lp.s.opts.Header {
		req.Header[k] = v
	}
	res, err := lp.s.lpClient.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded && lp.ctx.Err() == nil {
			return lpResponse{}, errTimeout
		}
		return lpResponse{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, lp.s.opts.MaxMessageSize))
	if err != nil {
		return lpResponse{}, err
	}
	if res.StatusCode != http.StatusOK {
		// phoenix.js cannot parse such a body and treats it as a network
		// error; a draining server answers 503.
		return lpResponse{}, &HandshakeError{Status: res.StatusCode}
	}
	var r lpResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return lpResponse{}, fmt.Errorf("client: long-poll response: %w", err)
	}
	return r, nil
}

func (lp *lpLink) get() (lpResponse, error) { return lp.do(http.MethodGet, "", nil) }

// pollLoop polls until the session ends and returns why.
func (lp *lpLink) pollLoop() (CloseEvent, error) {
	for {
		resp, err := lp.get()
		if ev, err := lp.endedWith(); ev != nil {
			return *ev, err
		}
		if err != nil {
			if err == errTimeout {
				return CloseEvent{Code: closeLPTimeout, Reason: "timeout"}, err
			}
			return CloseEvent{Code: closeLPServerError, Reason: "internal server error"}, err
		}
		switch resp.Status {
		case 200:
			lp.setToken(resp.Token)
			for _, m := range resp.Messages {
				if ev, err := lp.endedWith(); ev != nil {
					return *ev, err
				}
				lp.s.handleFrame(lp.c, []byte(m), false)
			}
		case 204:
			lp.setToken(resp.Token)
		case 410:
			// We hold a token, so the session is gone.
			return CloseEvent{Code: closeLPSessionGone, Reason: "session_gone"}, errors.New("client: long-poll session gone")
		case 403:
			return CloseEvent{Code: closeLPForbidden, Reason: "forbidden"}, &HandshakeError{Status: 403}
		default:
			return CloseEvent{Code: closeLPServerError, Reason: "internal server error"},
				fmt.Errorf("client: long-poll status %d", resp.Status)
		}
	}
}

func (lp *lpLink) setToken(t string) {
	if t == "" {
		return
	}
	lp.mu.Lock()
	lp.token = t
	lp.mu.Unlock()
}

func (lp *lpLink) endedWith() (*CloseEvent, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.ended, lp.err
}

// end ends the session for a reason, aborting its requests.
func (lp *lpLink) end(ev CloseEvent, err error) {
	lp.mu.Lock()
	if lp.ended == nil {
		lp.ended, lp.err = &ev, err
	}
	lp.queue = nil
	lp.mu.Unlock()
	lp.cancel()
}

// close ends the session from the client side.
func (lp *lpLink) close(ev CloseEvent) { lp.end(ev, nil) }

// send queues one message for the next POST.
func (lp *lpLink) send(data []byte, binary bool) {
	line := data
	if binary {
		line = []byte(base64.StdEncoding.EncodeToString(data))
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.ended != nil {
		return
	}
	lp.queue = append(lp.queue, line)
	if !lp.posting {
		lp.posting = true
		lp.s.wg.Add(1)
		go lp.postLoop()
	}
}

// postLoop POSTs what is queued, one request at a time, and exits when the
// queue is empty. A failed POST ends the session, as in phoenix.js.
func (lp *lpLink) postLoop() {
	defer lp.s.wg.Done()
	ndjson := lp.s.ser.Vsn() != wire.V1.Vsn()
	for {
		lp.mu.Lock()
		if len(lp.queue) == 0 || lp.ended != nil {
			lp.posting = false
			lp.mu.Unlock()
			return
		}
		n := 1
		if ndjson {
			n = min(len(lp.queue), lpMaxBatch)
		}
		batch := lp.queue[:n]
		lp.queue = lp.queue[n:]
		lp.mu.Unlock()
		var resp lpResponse
		var err error
		if ndjson {
			resp, err = lp.do(http.MethodPost, "application/x-ndjson", bytes.Join(batch, []byte("\n")))
		} else {
			// V1 frames are JSON objects, which ndjson would take for
			// base64: send each as the whole body.
			resp, err = lp.do(http.MethodPost, "application/json", batch[0])
		}
		if err == nil && resp.Status != 200 {
			err = fmt.Errorf("client: long-poll POST status %d", resp.Status)
		}
		if err != nil {
			if lp.ctx.Err() == nil {
				lp.end(CloseEvent{Code: closeLPServerError, Reason: "internal server error"}, err)
			}
			return
		}
	}
}
