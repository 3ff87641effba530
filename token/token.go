// Package token signs and verifies Phoenix.Token tokens: short-lived, signed
// (not encrypted) tokens, typically handed to a browser to authenticate its
// socket connection, as Phoenix.Token.sign/4 and Phoenix.Token.verify/4 (both
// implemented by Plug.Crypto) do in Elixir.
//
// A token is
//
//	"SFMyNTY" "." base64url(payload) "." base64url(HMAC-SHA256(key, "SFMyNTY." base64url(payload)))
//
// with unpadded base64url, and key = PBKDF2-HMAC-SHA256(secretKeyBase, salt,
// 1000 iterations, 32 bytes). The payload is :erlang.term_to_binary of the
// tuple {data, signed_at_ms, max_age_seconds}. Derived keys are cached per
// (secretKeyBase, salt) pair for the life of the process, as Plug.Crypto
// does, so salts should be a handful of constants, not per-request values.
//
// # Interoperability with Phoenix
//
// Tokens are those of Phoenix: a token signed by a Phoenix app verifies with
// [Verify], and one signed by [Sign] verifies in Phoenix, given the same
// secret key base and salt. This lets a Go service and a Phoenix app share
// socket and API tokens, and lets an app move from one to the other without
// logging every user out. Given the same data and signing time, [Sign] even
// produces the very bytes Phoenix.Token.sign does on OTP 25 and earlier (see
// [EncodeTerm] for the exceptions: OTP 26 and later spell atoms differently,
// and maps of more than 32 keys are ordered by hash); the tokens of different
// OTP releases differ in bytes, not in what they verify to.
//
// That is why the payload is, by default, encoded in the Erlang External Term
// Format ([FormatETF]) rather than JSON, even though a Go-only deployment has
// no need for it: phoenix.js treats the token as opaque, so nothing on the
// client cares, but a Phoenix server can only read Erlang terms. [FormatJSON]
// puts a JSON payload in the same envelope instead; it accepts any data
// encoding/json can marshal (structs included), but Phoenix cannot verify
// such tokens. [Verify] reads both.
//
// The data of an ETF token is any value [EncodeTerm] accepts, and [Verify]
// returns it as [DecodeTerm] decodes it: integers come back as int64 (or
// *big.Int), strings as string, lists as []any, maps with string keys as
// map[string]any, Elixir atoms as [Atom] (nil, true and false as Go's nil,
// true and false), tuples as [Tuple]. Data from a JSON token comes back
// in the same forms (integers as int64 or *big.Int, other numbers as
// float64, objects as map[string]any, arrays as []any).
//
// The payload is only signed: anyone holding a token can read its data.
// Put nothing secret in it.
//
// # Expiry
//
// A token records its signing time and a maximum age (by default one day);
// [Verify] reports [ErrExpired] once signed_at + max_age is in the past, and,
// like Plug.Crypto, [ErrInvalid] for a token whose signing time is in the
// future, so the clocks of the machines that sign and verify should agree.
package token

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"
)

// Errors returned by [Verify].
var (
	// ErrInvalid: the token is malformed, its signature does not match, its
	// payload cannot be decoded, or it was signed in the future.
	ErrInvalid = errors.New("token: invalid")
	// ErrExpired: the token is older than its maximum age, or the maximum
	// age is zero or negative.
	ErrExpired = errors.New("token: expired")
	// ErrMissing: the token is empty.
	ErrMissing = errors.New("token: missing")
)

// ErrShortSecret is returned by [Sign] and [Verify] for a secret key base
// shorter than [MinSecretKeyBase] bytes.
var ErrShortSecret = fmt.Errorf("token: secret key base must be at least %d bytes", MinSecretKeyBase)

const (
	// DefaultMaxAge is the maximum age stored in a token when
	// SignOptions.MaxAge is zero, and the one assumed for tokens in the
	// legacy payload forms that carry none.
	DefaultMaxAge = 86400 * time.Second
	// MinSecretKeyBase is the minimum length in bytes of a secret key base,
	// as Phoenix requires.
	MinSecretKeyBase = 20
)

// Format selects how [Sign] encodes a token's payload.
type Format int

const (
	// FormatETF encodes the payload in the Erlang External Term Format, as
	// Phoenix does. Data must be a value [EncodeTerm] accepts.
	FormatETF Format = iota
	// FormatJSON encodes the payload as the JSON object
	// {"data":…,"signed":ms,"max_age":seconds} (max_age is "infinity" for
	// tokens without one). Data is anything encoding/json can marshal. Only
	// this package, not Phoenix, can verify such tokens.
	FormatJSON
)

// SignOptions configures [Sign]. The zero value signs at the current time
// with a maximum age of one day.
type SignOptions struct {
	// SignedAt is the signing time recorded in the token, truncated to the
	// millisecond; zero means now.
	SignedAt time.Time
	// MaxAge is the maximum age recorded in the token (Phoenix's :max_age),
	// which Verify applies unless told otherwise. Zero means DefaultMaxAge.
	// Whole seconds are stored as an integer, others as a float.
	MaxAge time.Duration
	// NoMaxAge records an unlimited maximum age (Phoenix's max_age:
	// :infinity). It takes precedence over MaxAge.
	NoMaxAge bool
	// Format is the payload encoding; the default is FormatETF.
	Format Format
}

// VerifyOptions configures [Verify]. The zero value applies the maximum age
// recorded in the token against the current time.
type VerifyOptions struct {
	// MaxAge, if not zero, replaces the maximum age recorded in the token
	// (Phoenix's :max_age option to verify). A negative MaxAge makes every
	// token expired.
	MaxAge time.Duration
	// NoMaxAge disables the expiry check altogether (Phoenix's max_age:
	// :infinity). It takes precedence over MaxAge.
	NoMaxAge bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Sign returns a token carrying data, signed with a key derived from
// secretKeyBase and salt. With the default FormatETF, data must be a value
// [EncodeTerm] accepts; the error is then one of EncodeTerm's.
func Sign(secretKeyBase, salt string, data any, opts SignOptions) (string, error) {
	k, err := signingKeyFor(secretKeyBase, salt)
	if err != nil {
		return "", err
	}
	signedAt := opts.SignedAt
	if signedAt.IsZero() {
		signedAt = time.Now()
	}
	ms := signedAt.UnixMilli()
	var maxAge any
	switch {
	case opts.NoMaxAge:
		maxAge = atomInfinity
	case opts.MaxAge == 0:
		maxAge = int64(DefaultMaxAge / time.Second)
	case opts.MaxAge%time.Second == 0:
		maxAge = int64(opts.MaxAge / time.Second)
	default:
		maxAge = opts.MaxAge.Seconds()
	}
	var payload []byte
	switch opts.Format {
	case FormatETF:
		payload, err = EncodeTerm(Tuple{data, ms, maxAge})
	case FormatJSON:
		payload, err = encodeJSONPayload(data, ms, maxAge)
	default:
		err = fmt.Errorf("token: unknown format %d", opts.Format)
	}
	if err != nil {
		return "", err
	}
	return k.sign(payload), nil
}

// Verify checks token against the key derived from secretKeyBase and salt
// and returns the data it carries. It returns [ErrMissing] for an empty
// token, [ErrExpired] for an expired one, and an error matching [ErrInvalid]
// (possibly wrapping the reason a payload could not be decoded) for any other
// token that does not verify. Besides {data, signed_at, max_age} payloads it
// accepts the older Plug.Crypto and Phoenix forms {data, signed_at} and
// %{data: data, signed: signed_at}, whose maximum age is [DefaultMaxAge],
// and, like Plug.Crypto, HS384 and HS512 envelopes (prefixes "SFMzODQ" and
// "SFM1MTI") MACed with the same key. A secret key base shorter than
// [MinSecretKeyBase] bytes gives [ErrShortSecret].
func Verify(secretKeyBase, salt, token string, opts VerifyOptions) (any, error) {
	k, err := signingKeyFor(secretKeyBase, salt)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, ErrMissing
	}
	payload, ok := k.verify(token)
	if !ok {
		return nil, ErrInvalid
	}
	data, signed, maxAge, err := decodePayload(payload)
	if err != nil {
		return nil, err
	}
	var lim ageLimit
	switch {
	case opts.NoMaxAge:
		lim.infinite = true
	case opts.MaxAge < 0:
		lim.nonPositive = true
	case opts.MaxAge > 0:
		lim.ms = big.NewInt(opts.MaxAge.Milliseconds())
	default:
		if lim, err = limitFromTerm(maxAge); err != nil {
			return nil, err
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := lim.check(signed, now().UnixMilli()); err != nil {
		return nil, err
	}
	return data, nil
}

const atomInfinity = Atom("infinity")

// decodePayload returns the data, signing time and maximum age of a payload.
func decodePayload(p []byte) (data, signed, maxAge any, err error) {
	if len(p) > 0 && p[0] == '{' {
		return decodeJSONPayload(p)
	}
	term, err := DecodeTerm(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defaultAge := int64(DefaultMaxAge / time.Second)
	switch t := term.(type) {
	case Tuple:
		switch len(t) {
		case 3:
			return t[0], t[1], t[2], nil
		case 2: // Plug.Crypto 1.1
			return t[0], t[1], defaultAge, nil
		}
	case Map: // Phoenix before Plug.Crypto: %{data: data, signed: signed}
		var haveData, haveSigned bool
		for _, e := range t {
			switch e.Key {
			case Atom("data"):
				data, haveData = e.Value, true
			case Atom("signed"):
				signed, haveSigned = e.Value, true
			}
		}
		if haveData && haveSigned {
			return data, signed, defaultAge, nil
		}
	}
	return nil, nil, nil, fmt.Errorf("%w: unexpected payload shape", ErrInvalid)
}

// ageLimit is a maximum age: unlimited, zero or negative, or a number of
// milliseconds (nil for +Inf).
type ageLimit struct {
	infinite    bool
	nonPositive bool
	ms          *big.Int
}

// limitFromTerm reads the max_age stored in a payload: an integer or float
// number of seconds, or the atom infinity.
func limitFromTerm(v any) (ageLimit, error) {
	var lim ageLimit
	switch v := v.(type) {
	case Atom:
		if v != atomInfinity {
			break
		}
		lim.infinite = true
		return lim, nil
	case int64:
		if v <= 0 {
			lim.nonPositive = true
			return lim, nil
		}
		lim.ms = new(big.Int).Mul(big.NewInt(v), big.NewInt(1000))
		return lim, nil
	case *big.Int:
		if v.Sign() <= 0 {
			lim.nonPositive = true
			return lim, nil
		}
		lim.ms = new(big.Int).Mul(v, big.NewInt(1000))
		return lim, nil
	case float64:
		if math.IsNaN(v) {
			break
		}
		if v <= 0 {
			lim.nonPositive = true
			return lim, nil
		}
		if ms := v * 1000; !math.IsInf(ms, 0) {
			lim.ms, _ = new(big.Float).SetFloat64(ms).Int(nil) // truncates, like trunc/1
		}
		return lim, nil
	}
	return lim, fmt.Errorf("%w: bad max_age", ErrInvalid)
}

// check applies Plug.Crypto's rules: no check without a limit, expired for a
// limit of zero or less, invalid if signed in the future, expired if
// signed + limit < now.
func (lim ageLimit) check(signed any, nowMs int64) error {
	if lim.infinite {
		return nil
	}
	if lim.nonPositive {
		return ErrExpired
	}
	var s big.Int
	switch v := signed.(type) {
	case int64:
		s.SetInt64(v)
	case *big.Int:
		s.Set(v)
	default:
		return fmt.Errorf("%w: bad signed_at", ErrInvalid)
	}
	now := big.NewInt(nowMs)
	if s.Cmp(now) > 0 {
		return fmt.Errorf("%w: signed in the future", ErrInvalid)
	}
	if lim.ms == nil {
		return nil
	}
	if s.Add(&s, lim.ms).Cmp(now) < 0 {
		return ErrExpired
	}
	return nil
}

// Envelope prefixes: base64 of the JOSE names HS256, HS384 and HS512. Sign
// always uses HS256; Verify, like Plug.Crypto, accepts all three with the
// same key.
const (
	protectedHS256 = "SFMyNTY"
	protectedHS384 = "SFMzODQ"
	protectedHS512 = "SFM1MTI"
)

var b64 = base64.RawURLEncoding.Strict()

type cacheKey struct{ secretKeyBase, salt string }

// keyCache maps cacheKey to *signingKey.
var keyCache sync.Map

type signingKey struct {
	key   []byte
	hmacs sync.Pool // of HMAC-SHA256 hash.Hash keyed with key
}

func signingKeyFor(secretKeyBase, salt string) (*signingKey, error) {
	if len(secretKeyBase) < MinSecretKeyBase {
		return nil, ErrShortSecret
	}
	ck := cacheKey{secretKeyBase, salt}
	if v, ok := keyCache.Load(ck); ok {
		return v.(*signingKey), nil
	}
	key, err := pbkdf2.Key(sha256.New, secretKeyBase, []byte(salt), 1000, 32)
	if err != nil {
		return nil, fmt.Errorf("token: deriving key: %w", err)
	}
	k := &signingKey{key: key}
	k.hmacs.New = func() any { return hmac.New(sha256.New, key) }
	v, _ := keyCache.LoadOrStore(ck, k)
	return v.(*signingKey), nil
}

func (k *signingKey) mac(protected string, signedText []byte) []byte {
	if protected != protectedHS256 {
		h := sha512.New
		if protected == protectedHS384 {
			h = sha512.New384
		}
		m := hmac.New(h, k.key)
		m.Write(signedText)
		return m.Sum(nil)
	}
	m := k.hmacs.Get().(hash.Hash)
	m.Reset()
	m.Write(signedText)
	sum := m.Sum(nil)
	k.hmacs.Put(m)
	return sum
}

func (k *signingKey) sign(payload []byte) string {
	buf := make([]byte, 0, len(protectedHS256)+2+b64.EncodedLen(len(payload))+b64.EncodedLen(sha256.Size))
	buf = append(buf, protectedHS256...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sum := k.mac(protectedHS256, buf)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sum)
	return string(buf)
}

// verify checks the envelope and MAC of token and returns its payload.
func (k *signingKey) verify(token string) ([]byte, bool) {
	for i := 0; i < len(token); i++ {
		// Only the base64url alphabet and dots: the base64 decoder would
		// otherwise skip CR and LF, letting altered tokens verify.
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, false
		}
	}
	protected, rest, ok1 := strings.Cut(token, ".")
	payloadText, sigText, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sigText, ".") {
		return nil, false
	}
	switch protected {
	case protectedHS256, protectedHS384, protectedHS512:
	default:
		return nil, false
	}
	payload, err := b64.DecodeString(payloadText)
	if err != nil {
		return nil, false
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil {
		return nil, false
	}
	signedText := token[:len(protected)+1+len(payloadText)]
	if !hmac.Equal(k.mac(protected, []byte(signedText)), sig) {
		return nil, false
	}
	return payload, true
}
