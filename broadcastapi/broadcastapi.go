// Package broadcastapi lets other services broadcast to a Plume endpoint's
// channels over HTTP: a worker, a cron job or a service written in another
// language POSTs a message, and every client joined to its topic, on every
// node of the cluster, receives it, as if the server had called
// Endpoint.Broadcast (it does).
//
// # Requests
//
// POST a JSON object with Content-Type application/json, either one message
//
//	{"topic": "room:42", "event": "new_msg", "payload": {"body": "hi"}}
//
// or a batch, broadcast in order:
//
//	{"messages": [{"topic": "room:1", "event": "e", "payload": {}}, ...]}
//
// The payload must be a JSON object (Phoenix's rule for broadcasts); an
// absent payload is {}. Events starting with "phx_" are refused: phoenix.js
// takes them as channel control messages. A "disconnect" event on a socket id
// topic closes that user's connections, as Endpoint.Disconnect does.
//
// A success answers 200 with {"broadcast": n}, the number of messages sent.
// Errors answer {"error": "..."} with status 400 (malformed JSON), 401
// (missing or bad credentials), 405 (not POST), 413 (body above
// MaxBodyBytes, or more than MaxBatch messages), 415 (not JSON), 422 (a
// message is invalid: empty topic or event, payload not an object; nothing
// is sent) or 503 (the PubSub adapter failed; "broadcast" then says how many
// messages went out before the failure).
//
// # Authentication
//
// Every request carries the shared secret in one of two ways:
//
//   - "Authorization: Bearer <secret>", compared in constant time. Simple,
//     but the secret travels with every request (use HTTPS).
//   - A signature, with which the secret never travels: the header
//     X-Plume-Timestamp holds the Unix time in seconds, and
//     X-Plume-Signature holds "v1=" followed by the lowercase hex
//     HMAC-SHA256, keyed with the secret, of the timestamp, a ".", and the
//     exact body bytes (see [Sign]). Requests whose timestamp is more than
//     MaxSkew away from the server's clock are refused, so a captured
//     request cannot be replayed later; within MaxSkew it can, so keep the
//     skew short and use HTTPS.
//
// From a shell:
//
//	ts=$(date +%s)
//	body='{"topic":"room:42","event":"new_msg","payload":{"body":"hi"}}'
//	sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.* //')
//	curl -H 'Content-Type: application/json' -H "X-Plume-Timestamp: $ts" \
//	     -H "X-Plume-Signature: v1=$sig" -d "$body" http://127.0.0.1:4000/api/broadcast
//
// [Client] does this for Go programs, and `plume broadcast` from the command
// line.
package broadcastapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/plumehq/plume"
)

// Header names of signed requests.
const (
	// HeaderTimestamp holds the request's Unix time in seconds.
	HeaderTimestamp = "X-Plume-Timestamp"
	// HeaderSignature holds "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "X-Plume-Signature"
)

// Defaults of [Options].
const (
	// DefaultMaxBodyBytes is the default Options.MaxBodyBytes: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxBatch is the default Options.MaxBatch.
	DefaultMaxBatch = 100
	// DefaultMaxSkew is the default Options.MaxSkew.
	DefaultMaxSkew = 5 * time.Minute
)

// Options configures a [Handler]. Only Secret is required.
type Options struct {
	// Secret authenticates callers, as a bearer token or as the HMAC key of
	// signed requests. Use at least 32 random bytes' worth of text.
	Secret string
	// PreviousSecrets are accepted as well as Secret, so that a secret can
	// be rotated without downtime: add the new one as Secret, keep the old
	// one here until every caller has switched, then remove it.
	PreviousSecrets []string
	// RequireSignature refuses bearer tokens, so that the secret itself is
	// never accepted over the wire and only signed requests pass.
	RequireSignature bool
	// MaxSkew is how far a signed request's timestamp may be from this
	// server's clock; default 5 minutes.
	MaxSkew time.Duration
	// MaxBodyBytes caps the request body; default 1 MiB. Larger bodies get
	// 413.
	MaxBodyBytes int64
	// MaxBatch caps the messages of one batch; default 100. Larger batches
	// get 413.
	MaxBatch int
}

// Handler is the broadcast API, an http.Handler. Mount it at any path,
// e.g. mux.Handle("/api/broadcast", h).
type Handler struct {
	ep       *plume.Endpoint
	secrets  [][]byte
	bearer   bool
	maxSkew  time.Duration
	maxBody  int64
	maxBatch int
	now      func() time.Time
}

// New returns the broadcast API of ep. It panics if opts.Secret is empty,
// as an API that anyone may call is never what is meant.
func New(ep *plume.Endpoint, opts Options) *Handler {
	if opts.Secret == "" {
		panic("broadcastapi: Options.Secret is empty")
	}
	h := &Handler{
		ep:       ep,
		bearer:   !opts.RequireSignature,
		maxSkew:  opts.MaxSkew,
		maxBody:  opts.MaxBodyBytes,
		maxBatch: opts.MaxBatch,
		now:      time.Now,
	}
	for _, s := range append([]string{opts.Secret}, opts.PreviousSecrets...) {
		if s != "" {
			h.secrets = append(h.secrets, []byte(s))
		}
	}
	if h.maxSkew <= 0 {
		h.maxSkew = DefaultMaxSkew
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxBatch <= 0 {
		h.maxBatch = DefaultMaxBatch
	}
	return h
}

// Message is one broadcast: what a request body holds, alone or in a batch.
type Message struct {
	// Topic is the channel topic to broadcast on, e.g. "room:42".
	Topic string `json:"topic"`
	// Event is the event name clients receive; "phx_" names are refused.
	Event string `json:"event"`
	// Payload must encode to a JSON object; nil sends {}.
	Payload any `json:"payload,omitempty"`
}

// wireMessage is a Message as decoded by the server.
type wireMessage struct {
	Topic   string          `json:"topic"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

type request struct {
	wireMessage
	Messages []wireMessage `json:"messages"`
}

// statusError is a refusal: an HTTP status and the text of {"error": ...}.
type statusError struct {
	status int
	msg    string
}

func refuse(status int, format string, args ...any) *statusError {
	return &statusError{status, fmt.Sprintf(format, args...)}
}

// ServeHTTP authenticates, validates and broadcasts one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msgs, serr := h.read(w, r)
	if serr != nil {
		h.fail(w, serr)
		return
	}
	for i, m := range msgs {
		if err := h.ep.Broadcast(r.Context(), m.Topic, m.Event, m.Payload); err != nil {
			h.ep.Logger().Warn("broadcast API: broadcast failed", "topic", m.Topic, "event", m.Event, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{
				"error":     fmt.Sprintf("broadcast %d of %d failed: %v", i+1, len(msgs), err),
				"broadcast": i,
			})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"broadcast": len(msgs)})
}

func (h *Handler) fail(w http.ResponseWriter, e *statusError) {
	switch e.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="plume"`)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// read checks, in order, the method, the credentials that need no body,
// the content type, the body size, the signature, the JSON and the
// messages, and returns the messages to broadcast.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) ([]wireMessage, *statusError) {
	if r.Method != http.MethodPost {
		return nil, refuse(http.StatusMethodNotAllowed, "method %s not allowed: use POST", r.Method)
	}
	signedAt, serr := h.authenticate(r)
	if serr != nil {
		return nil, serr
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, refuse(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	if r.ContentLength > h.maxBody {
		return nil, refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes", h.maxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes", h.maxBody)
		}
		return nil, refuse(http.StatusBadRequest, "reading body: %v", err)
	}
	if signedAt != "" && !h.validSignature(signedAt, r.Header.Get(HeaderSignature), body) {
		return nil, refuse(http.StatusUnauthorized, "invalid signature")
	}
	return h.parse(body)
}

// authenticate checks a bearer token, or a signed request's timestamp; for
// the latter it returns the timestamp, whose signature is checked once the
// body is read.
func (h *Handler) authenticate(r *http.Request) (signedAt string, serr *statusError) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", refuse(http.StatusUnauthorized, "unsupported authorization scheme: use Bearer or a signature")
		}
		if !h.bearer {
			return "", refuse(http.StatusUnauthorized, "bearer tokens are not accepted: sign the request")
		}
		if !h.matchSecret(strings.TrimSpace(tok)) {
			return "", refuse(http.StatusUnauthorized, "invalid credentials")
		}
		return "", nil
	}
	if r.Header.Get(HeaderSignature) == "" {
		return "", refuse(http.StatusUnauthorized, "missing credentials: send Authorization: Bearer or %s and %s", HeaderTimestamp, HeaderSignature)
	}
	ts := r.Header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", refuse(http.StatusUnauthorized, "missing or malformed %s: want Unix seconds", HeaderTimestamp)
	}
	if d := h.now().Sub(time.Unix(sec, 0)).Abs(); d > h.maxSkew {
		return "", refuse(http.StatusUnauthorized, "%s is %s away from the server's clock (at most %s)", HeaderTimestamp, d.Round(time.Second), h.maxSkew)
	}
	return ts, nil
}

// matchSecret compares tok with every secret in constant time, comparing
// digests so that not even the secrets' lengths leak.
func (h *Handler) matchSecret(tok string) bool {
	t := sha256.Sum256([]byte(tok))
	ok := 0
	for _, s := range h.secrets {
		d := sha256.Sum256(s)
		ok |= subtle.ConstantTimeCompare(t[:], d[:])
	}
	return ok == 1
}

func (h *Handler) validSignature(ts, header string, body []byte) bool {
	hexSig, found := strings.CutPrefix(strings.TrimSpace(header), "v1=")
	if !found {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	ok := false
	for _, s := range h.secrets {
		if hmac.Equal(got, mac(s, ts, body)) {
			ok = true
		}
	}
	return ok
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the X-Plume-Signature value of a request body signed at
// unixSeconds (the X-Plume-Timestamp value) with secret.
func Sign(secret string, unixSeconds int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac([]byte(secret), strconv.FormatInt(unixSeconds, 10), body))
}

// parse decodes and validates a body; any invalid message refuses the whole
// request, so that a batch is sent entirely or not at all.
func (h *Handler) parse(body []byte) ([]wireMessage, *statusError) {
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if err == io.EOF {
			return nil, refuse(http.StatusBadRequest, "empty body")
		}
		return nil, refuse(http.StatusBadRequest, "invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, refuse(http.StatusBadRequest, "invalid JSON: data after the object")
	}
	single := req.Topic != "" || req.Event != "" || req.Payload != nil
	var msgs []wireMessage
	switch {
	case req.Messages != nil && single:
		return nil, refuse(http.StatusUnprocessableEntity, "send either topic, event and payload, or messages, not both")
	case req.Messages != nil:
		if len(req.Messages) == 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "messages is empty")
		}
		if len(req.Messages) > h.maxBatch {
			return nil, refuse(http.StatusRequestEntityTooLarge, "batch of %d messages: at most %d allowed", len(req.Messages), h.maxBatch)
		}
		msgs = req.Messages
	default:
		msgs = []wireMessage{req.wireMessage}
	}
	for i := range msgs {
		if err := validate(&msgs[i]); err != "" {
			if req.Messages != nil {
				err = fmt.Sprintf("messages[%d]: %s", i, err)
			}
			return nil, refuse(http.StatusUnprocessableEntity, "%s", err)
		}
	}
	return msgs, nil
}

// validate checks one message and sets an absent payload to {}.
func validate(m *wireMessage) string {
	switch {
	case m.Topic == "":
		return "topic is empty"
	case m.Event == "":
		return "event is empty"
	case strings.HasPrefix(m.Event, "phx_"):
		return fmt.Sprintf("event %q is reserved: phoenix.js takes phx_ events as channel control messages", m.Event)
	}
	if m.Payload == nil {
		m.Payload = json.RawMessage("{}")
	}
	if m.Payload[0] != '{' {
		return "payload must be a JSON object"
	}
	return ""
}
