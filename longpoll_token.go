package plume

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Long-poll session tokens.
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// where payload is
//
//	version (1 byte) | expiry, unix ms (8 bytes) | session id (16 bytes) | node name
//
// The key is derived from Options.LongPollSecret (or random bytes drawn at
// NewEndpoint), so a token can neither be forged nor altered, and one signed
// on another node that shares the secret names that node: the seam for
// routing a request to the node that owns the session (longPoll.forward).
// phoenix.js treats the token as opaque and takes the one in every poll
// reply, which lets a live session's token be re-signed before it expires.

const (
	lpTokenVersion = 1
	lpTokenMaxLen  = 1024
	// lpDefaultTokenMaxAge is how long a session token is valid. Polls re-sign
	// it once half of that has passed, so only a client that keeps an old
	// token (phoenix.js never does) ever presents an expired one.
	lpDefaultTokenMaxAge = time.Hour
)

var (
	errLPTokenInvalid = errors.New("plume: invalid long-poll token")
	errLPTokenExpired = errors.New("plume: expired long-poll token")
)

// lpID names a session; it is random and never reused.
type lpID [16]byte

func newLPID() lpID {
	var id lpID
	rand.Read(id[:])
	return id
}

// lpToken is a verified token's content.
type lpToken struct {
	node    string
	id      lpID
	expires int64 // unix milliseconds
}

// lpKey derives the token key from a secret, so that the secret may also key
// other things without the two ever sharing a key.
func lpKey(secret []byte) []byte {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("plume long-poll session token v1"))
	return m.Sum(nil)
}

func (lp *longPoll) sign(t lpToken) string {
	payload := make([]byte, 0, 1+8+len(t.id)+len(t.node))
	payload = append(payload, lpTokenVersion)
	payload = binary.BigEndian.AppendUint64(payload, uint64(t.expires))
	payload = append(payload, t.id[:]...)
	payload = append(payload, t.node...)
	m := hmac.New(sha256.New, lp.key)
	m.Write(payload)
	enc := base64.RawURLEncoding
	out := make([]byte, 0, enc.EncodedLen(len(payload))+1+enc.EncodedLen(sha256.Size))
	out = enc.AppendEncode(out, payload)
	out = append(out, '.')
	out = enc.AppendEncode(out, m.Sum(nil))
	return string(out)
}

// verify checks a token's signature and expiry at now (unix ms).
func (lp *longPoll) verify(s string, now int64) (lpToken, error) {
	if s == "" || len(s) > lpTokenMaxLen {
		return lpToken{}, errLPTokenInvalid
	}
	p, sig, ok := strings.Cut(s, ".")
	if !ok {
		return lpToken{}, errLPTokenInvalid
	}
	enc := base64.RawURLEncoding.Strict()
	payload, err := enc.DecodeString(p)
	if err != nil {
		return lpToken{}, errLPTokenInvalid
	}
	mac, err := enc.DecodeString(sig)
	if err != nil {
		return lpToken{}, errLPTokenInvalid
	}
	m := hmac.New(sha256.New, lp.key)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return lpToken{}, errLPTokenInvalid
	}
	var t lpToken
	if len(payload) < 1+8+len(t.id) || payload[0] != lpTokenVersion {
		return lpToken{}, errLPTokenInvalid
	}
	t.expires = int64(binary.BigEndian.Uint64(payload[1:9]))
	copy(t.id[:], payload[9:])
	t.node = string(payload[9+len(t.id):])
	if now >= t.expires {
		return lpToken{}, errLPTokenExpired
	}
	return t, nil
}
