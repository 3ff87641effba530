package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSecret = "plume-test-secret-key-base-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
	testSalt   = "user socket"
	vectorPath = "testdata/phoenix-token-vectors.json"
	// sharedVectorPath is where the vectors were captured, beside the clone.
	sharedVectorPath = "../../shared/reference/phoenix-token-vectors.json"
)

var t0 = time.Unix(1700000000, 0)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

type vectorFile struct {
	Cases []vectorCase `json:"cases"`
}

type vectorCase struct {
	DataInspect          string          `json:"data_inspect"`
	DataJSON             json.RawMessage `json:"data_json"`
	MaxAge               int64           `json:"max_age"`
	PayloadETFHex        string          `json:"payload_etf_hex"`
	Salt                 string          `json:"salt"`
	SecretKeyBase        string          `json:"secret_key_base"`
	SignedAt             int64           `json:"signed_at"`
	Token                string          `json:"token"`
	VerifyIgnoringMaxAge string          `json:"verify_ignoring_max_age"`
}

func loadVectors(tb testing.TB) vectorFile {
	tb.Helper()
	b, err := os.ReadFile(vectorPath)
	if err != nil {
		tb.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		tb.Fatal(err)
	}
	if len(vf.Cases) == 0 {
		tb.Fatal("no vectors")
	}
	return vf
}

// data returns the vector's data in the Go forms Verify returns.
func (c vectorCase) data(tb testing.TB) any {
	tb.Helper()
	v, err := decodeJSON(c.DataJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	for _, c := range loadVectors(t).Cases {
		t.Run(c.DataInspect, func(t *testing.T) {
			signedAt := time.Unix(c.SignedAt, 0)
			want := c.data(t)

			got, err := Verify(c.SecretKeyBase, c.Salt, c.Token, VerifyOptions{Now: clock(signedAt.Add(time.Second))})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !termsEqual(got, want) {
				t.Fatalf("Verify = %#v, want %#v", got, want)
			}
			// verify_ignoring_max_age: {:ok, data} at the real current time.
			got, err = Verify(c.SecretKeyBase, c.Salt, c.Token, VerifyOptions{NoMaxAge: true})
			if err != nil || !termsEqual(got, want) {
				t.Fatalf("Verify(NoMaxAge) = %#v, %v; want %#v (%s)", got, err, want, c.VerifyIgnoringMaxAge)
			}
			// The stored max_age applies.
			late := signedAt.Add(time.Duration(c.MaxAge)*time.Second + time.Millisecond)
			if _, err := Verify(c.SecretKeyBase, c.Salt, c.Token, VerifyOptions{Now: clock(late)}); err != ErrExpired {
				t.Fatalf("Verify after max_age: err = %v, want ErrExpired", err)
			}

			payload, err := EncodeTerm(Tuple{want, c.SignedAt * 1000, c.MaxAge})
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(payload); h != c.PayloadETFHex {
				t.Fatalf("payload\n got %s\nwant %s", h, c.PayloadETFHex)
			}
			tok, err := Sign(c.SecretKeyBase, c.Salt, want, SignOptions{SignedAt: signedAt, MaxAge: time.Duration(c.MaxAge) * time.Second})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if tok != c.Token {
				t.Fatalf("Sign\n got %s\nwant %s", tok, c.Token)
			}
		})
	}
}

// The vectors in testdata are a copy of the captured ones; keep them in step.
func TestVectorsMatchShared(t *testing.T) {
	shared, err := os.ReadFile(sharedVectorPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("shared/reference/phoenix-token-vectors.json is not beside the clone")
	}
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, local) {
		t.Fatalf("%s differs from %s; copy it again", vectorPath, sharedVectorPath)
	}
}

func TestSignDefaults(t *testing.T) {
	// Default max age (86400) as in the first vector.
	tok, err := Sign(testSecret, testSalt, 42, SignOptions{SignedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if want := "SFMyNTY.g2gDYSpuBgAAaOXPiwFiAAFRgA.avXR6pNzIBQ2fAQeJ58rTYnv4ijOsHRzhwU3oyrPoWw"; tok != want {
		t.Fatalf("Sign = %s, want %s", tok, want)
	}
	// Zero SignedAt means now.
	before := time.Now().UnixMilli()
	tok, err = Sign(testSecret, testSalt, 1, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	_, signed, maxAge := payloadOf(t, tok)
	if s := signed.(int64); s < before || s > after {
		t.Fatalf("signed_at %d not in [%d, %d]", s, before, after)
	}
	if maxAge != int64(86400) {
		t.Fatalf("max_age = %#v, want 86400", maxAge)
	}
	// Sub-millisecond signing times are truncated.
	tok, _ = Sign(testSecret, testSalt, 1, SignOptions{SignedAt: t0.Add(1999 * time.Microsecond)})
	if _, signed, _ := payloadOf(t, tok); signed != t0.UnixMilli()+1 {
		t.Fatalf("signed_at = %v, want %d", signed, t0.UnixMilli()+1)
	}
}

// payloadOf decodes the payload of a token without verifying it.
func payloadOf(t *testing.T, tok string) (data, signed, maxAge any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	p, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	data, signed, maxAge, err = decodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return data, signed, maxAge
}

type profile struct {
	ID    int      `json:"id"`
	Roles []string `json:"roles"`
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		data   any
		want   any
		format Format
	}{
		{"int", 42, int64(42), FormatETF},
		{"string", "user-7", "user-7", FormatETF},
		{"map", map[string]any{"id": 7, "tags": []string{"a"}}, map[string]any{"id": int64(7), "tags": []any{"a"}}, FormatETF},
		{"atoms and tuples", Tuple{Atom("ok"), nil, true}, Tuple{Atom("ok"), nil, true}, FormatETF},
		{"atom-keyed map", map[Atom]any{"user_id": 1}, Map{{Atom("user_id"), int64(1)}}, FormatETF},
		{"big", mustBig("123456789012345678901234567890"), mustBig("123456789012345678901234567890"), FormatETF},
		{"nil", nil, nil, FormatETF},
		{"json int", 42, int64(42), FormatJSON},
		{"json struct", profile{ID: 7, Roles: []string{"admin"}}, map[string]any{"id": int64(7), "roles": []any{"admin"}}, FormatJSON},
		{"json float", 2.5, 2.5, FormatJSON},
		{"json big", mustBig("123456789012345678901234567890"), mustBig("123456789012345678901234567890"), FormatJSON},
		{"json nil", nil, nil, FormatJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Sign(testSecret, testSalt, tt.data, SignOptions{SignedAt: t0, Format: tt.format})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !strings.HasPrefix(tok, "SFMyNTY.") {
				t.Fatalf("token %q lacks the HS256 prefix", tok)
			}
			got, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0.Add(time.Hour))})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !termsEqual(got, tt.want) {
				t.Fatalf("Verify = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	if _, err := Sign("too short", testSalt, 1, SignOptions{}); err != ErrShortSecret {
		t.Fatalf("short secret: err = %v", err)
	}
	if _, err := Sign(strings.Repeat("x", 19), testSalt, 1, SignOptions{}); err != ErrShortSecret {
		t.Fatalf("19-byte secret: err = %v", err)
	}
	if _, err := Sign(strings.Repeat("x", 20), testSalt, 1, SignOptions{}); err != nil {
		t.Fatalf("20-byte secret: err = %v", err)
	}
	if _, err := Sign(testSecret, testSalt, profile{}, SignOptions{}); err == nil {
		t.Fatal("Sign(struct) with FormatETF succeeded")
	}
	if _, err := Sign(testSecret, testSalt, make(chan int), SignOptions{Format: FormatJSON}); err == nil {
		t.Fatal("Sign(chan) with FormatJSON succeeded")
	}
	if _, err := Sign(testSecret, testSalt, 1, SignOptions{Format: 7}); err == nil {
		t.Fatal("Sign with an unknown format succeeded")
	}
	if _, err := Verify("too short", testSalt, "x", VerifyOptions{}); err != ErrShortSecret {
		t.Fatalf("Verify short secret: err = %v", err)
	}
}

func TestMissing(t *testing.T) {
	if _, err := Verify(testSecret, testSalt, "", VerifyOptions{}); err != ErrMissing {
		t.Fatalf("err = %v, want ErrMissing", err)
	}
}

func TestTamper(t *testing.T) {
	tok, err := Sign(testSecret, testSalt, map[string]any{"id": 7, "role": "admin"}, SignOptions{SignedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	now := VerifyOptions{Now: clock(t0)}
	if _, err := Verify(testSecret, testSalt, tok, now); err != nil {
		t.Fatalf("untouched token: %v", err)
	}
	check := func(bad string) {
		t.Helper()
		if v, err := Verify(testSecret, testSalt, bad, now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify(%q) = %#v, %v; want ErrInvalid", bad, v, err)
		}
	}
	replacements := []byte("Aa09-_.=+/\n\r \x00\xff")
	for i := range len(tok) {
		for _, c := range append(replacements, tok[i]^1, tok[i]^0x20) {
			if c == tok[i] {
				continue
			}
			b := []byte(tok)
			b[i] = c
			check(string(b)) // replaced
		}
		check(tok[:i] + tok[i+1:])            // deleted
		check(tok[:i] + "A" + tok[i:])        // inserted
		check(tok[:i] + "\n" + tok[i:])       // line break
		check(tok[:i] + "." + tok[i:])        // extra separator
		check(tok[:i] + tok[i:i+1] + tok[i:]) // doubled
		if i > 0 {
			check(tok[:i]) // truncated
		}
	}
	check(tok + "=")
	check(tok + ".")
	check(tok + "A")
	check("SFMzODQ" + tok[len("SFMyNTY"):]) // HS384 label on an HS256 MAC
	check("garbage")
	check("..")
	if _, err := Verify(testSecret, "other salt", tok, now); err != ErrInvalid {
		t.Fatalf("other salt: err = %v", err)
	}
	if _, err := Verify(testSecret+"x", testSalt, tok, now); err != ErrInvalid {
		t.Fatalf("other secret: err = %v", err)
	}
}

// Plug.Crypto also accepts HS384 and HS512 envelopes, keyed the same way.
func TestOtherDigests(t *testing.T) {
	payload, err := EncodeTerm(Tuple{"x", t0.UnixMilli(), int64(60)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := signingKeyFor(testSecret, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	for protected, h := range map[string]func() hash.Hash{
		"SFMzODQ": sha512.New384,
		"SFM1MTI": sha512.New,
	} {
		text := protected + "." + b64.EncodeToString(payload)
		m := hmac.New(h, k.key)
		m.Write([]byte(text))
		tok := text + "." + b64.EncodeToString(m.Sum(nil))
		got, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0)})
		if err != nil || got != "x" {
			t.Fatalf("%s: Verify = %#v, %v", protected, got, err)
		}
	}
}

func TestExpiry(t *testing.T) {
	tok, err := Sign(testSecret, testSalt, "x", SignOptions{SignedAt: t0, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		opts VerifyOptions
		want error
	}{
		{"at signing", t0, VerifyOptions{}, nil},
		{"at max age", t0.Add(time.Minute), VerifyOptions{}, nil},
		{"just after max age", t0.Add(time.Minute + time.Millisecond), VerifyOptions{}, ErrExpired},
		{"much later", t0.Add(24 * time.Hour), VerifyOptions{}, ErrExpired},
		{"signed in the future", t0.Add(-time.Millisecond), VerifyOptions{}, ErrInvalid},
		{"future but no max age", t0.Add(-time.Hour), VerifyOptions{NoMaxAge: true}, nil},
		{"override longer", t0.Add(time.Hour), VerifyOptions{MaxAge: 2 * time.Hour}, nil},
		{"override at limit", t0.Add(2 * time.Hour), VerifyOptions{MaxAge: 2 * time.Hour}, nil},
		{"override longer, expired", t0.Add(3 * time.Hour), VerifyOptions{MaxAge: 2 * time.Hour}, ErrExpired},
		{"override shorter", t0.Add(2 * time.Second), VerifyOptions{MaxAge: time.Second}, ErrExpired},
		{"override sub-second", t0.Add(500 * time.Millisecond), VerifyOptions{MaxAge: 500 * time.Millisecond}, nil},
		{"override sub-second, expired", t0.Add(501 * time.Millisecond), VerifyOptions{MaxAge: 500 * time.Millisecond}, ErrExpired},
		{"override negative", t0, VerifyOptions{MaxAge: -time.Second}, ErrExpired},
		{"override sub-millisecond", t0, VerifyOptions{MaxAge: time.Microsecond}, nil},
		{"no max age", t0.Add(100 * 365 * 24 * time.Hour), VerifyOptions{NoMaxAge: true}, nil},
		{"no max age beats MaxAge", t0.Add(time.Hour), VerifyOptions{NoMaxAge: true, MaxAge: time.Second}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Now = clock(tt.now)
			got, err := Verify(testSecret, testSalt, tok, opts)
			if !errors.Is(err, tt.want) || (tt.want == nil && got != "x") {
				t.Fatalf("Verify = %#v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestStoredMaxAge(t *testing.T) {
	tests := []struct {
		name     string
		opts     SignOptions
		wantAge  any
		okAt     time.Duration // after signing
		failAt   time.Duration // after signing; 0: never
		wantFail error
	}{
		{"default", SignOptions{}, int64(86400), 24 * time.Hour, 24*time.Hour + time.Millisecond, ErrExpired},
		{"whole seconds", SignOptions{MaxAge: 2 * time.Hour}, int64(7200), 2 * time.Hour, 2*time.Hour + time.Millisecond, ErrExpired},
		{"fractional", SignOptions{MaxAge: 1500 * time.Millisecond}, 1.5, 1500 * time.Millisecond, 1501 * time.Millisecond, ErrExpired},
		{"infinity", SignOptions{NoMaxAge: true, MaxAge: time.Second}, Atom("infinity"), 200 * 365 * 24 * time.Hour, 0, nil},
		{"negative", SignOptions{MaxAge: -time.Second}, int64(-1), -1, 0, nil},
	}
	for _, format := range []Format{FormatETF, FormatJSON} {
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.name, "/", format), func(t *testing.T) {
				opts := tt.opts
				opts.SignedAt = t0
				opts.Format = format
				tok, err := Sign(testSecret, testSalt, "x", opts)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, age := payloadOf(t, tok); age != tt.wantAge {
					t.Fatalf("stored max_age = %#v, want %#v", age, tt.wantAge)
				}
				if tt.okAt < 0 {
					if _, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0)}); err != ErrExpired {
						t.Fatalf("Verify: err = %v, want ErrExpired", err)
					}
					return
				}
				if _, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0.Add(tt.okAt))}); err != nil {
					t.Fatalf("Verify at +%v: %v", tt.okAt, err)
				}
				if tt.failAt != 0 {
					if _, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0.Add(tt.failAt))}); err != tt.wantFail {
						t.Fatalf("Verify at +%v: err = %v, want %v", tt.failAt, err, tt.wantFail)
					}
				}
			})
		}
	}
	// An ETF infinity is the atom, as Phoenix writes max_age: :infinity.
	tok, _ := Sign(testSecret, testSalt, 1, SignOptions{SignedAt: t0, NoMaxAge: true})
	if want := "SFMyNTY.g2gDYQFuBgAAaOXPiwFkAAhpbmZpbml0eQ."; !strings.HasPrefix(tok, want) {
		t.Fatalf("token %s does not start with %s", tok, want)
	}
}

func signRaw(t testing.TB, payload []byte) string {
	k, err := signingKeyFor(testSecret, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	return k.sign(payload)
}

func signTerm(t testing.TB, term any) string {
	p, err := EncodeTerm(term)
	if err != nil {
		t.Fatal(err)
	}
	return signRaw(t, p)
}

func TestLegacyForms(t *testing.T) {
	ms := t0.UnixMilli()
	for name, tok := range map[string]string{
		"tuple": signTerm(t, Tuple{"data", ms}),
		"map":   signTerm(t, map[Atom]any{"data": "data", "signed": ms}),
		"map with extra keys": signTerm(t, Map{
			{Atom("data"), "data"}, {Atom("signed"), ms}, {Atom("other"), 1},
		}),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0.Add(24 * time.Hour))})
			if err != nil || got != "data" {
				t.Fatalf("Verify = %#v, %v", got, err)
			}
			late := clock(t0.Add(24*time.Hour + time.Millisecond))
			if _, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: late}); err != ErrExpired {
				t.Fatalf("Verify after a day: err = %v, want ErrExpired", err)
			}
			if _, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: late, MaxAge: 48 * time.Hour}); err != nil {
				t.Fatalf("Verify with MaxAge override: %v", err)
			}
		})
	}
}

func TestBadPayloads(t *testing.T) {
	ms := t0.UnixMilli()
	bad := map[string]string{
		"not ETF":              signRaw(t, []byte("hello")),
		"empty":                signRaw(t, nil),
		"truncated ETF":        signRaw(t, []byte{131, 104, 3}),
		"bare data":            signTerm(t, "data"),
		"1-tuple":              signTerm(t, Tuple{"data"}),
		"4-tuple":              signTerm(t, Tuple{"data", ms, 60, 1}),
		"map without key":      signTerm(t, map[Atom]any{"data": 1}),
		"binary keys":          signTerm(t, map[string]any{"data": 1, "signed": ms}),
		"atom signed":          signTerm(t, Tuple{"data", Atom("now"), 60}),
		"float signed":         signTerm(t, Tuple{"data", float64(ms), 60}),
		"atom max_age":         signTerm(t, Tuple{"data", ms, Atom("forever")}),
		"binary max_age":       signTerm(t, Tuple{"data", ms, "60"}),
		"huge signed":          signTerm(t, Tuple{"data", mustBig("99999999999999999999999"), 60}),
		"JSON without max_age": signRaw(t, []byte(`{"data":1,"signed":1}`)),
		"JSON trailing":        signRaw(t, []byte(`{"data":1,"signed":1700000000000,"max_age":60} x`)),
		"JSON bad":             signRaw(t, []byte(`{"data":`)),
		"JSON bad age":         signRaw(t, []byte(`{"data":1,"signed":1700000000000,"max_age":"soon"}`)),
		"JSON float big":       signRaw(t, []byte(`{"data":1e999,"signed":1700000000000,"max_age":60}`)),
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			if v, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0)}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %#v, %v; want ErrInvalid", v, err)
			}
		})
	}
	// Payloads Plug.Crypto accepts although Phoenix never writes them.
	good := map[string]string{
		"float max_age":       signTerm(t, Tuple{"data", ms, 0.5}),
		"big max_age":         signTerm(t, Tuple{"data", ms, mustBig("99999999999999999999999")}),
		"huge float max_age":  signTerm(t, Tuple{"data", ms, 1e308}),
		"infinity any signed": signTerm(t, Tuple{"data", Atom("whenever"), Atom("infinity")}),
		"JSON":                signRaw(t, []byte(`{"data":"data","signed":1700000000000,"max_age":60}`)),
	}
	for name, tok := range good {
		t.Run(name, func(t *testing.T) {
			if v, err := Verify(testSecret, testSalt, tok, VerifyOptions{Now: clock(t0)}); err != nil || v != "data" {
				t.Fatalf("Verify = %#v, %v", v, err)
			}
		})
	}
	neg := signTerm(t, Tuple{"data", new(big.Int).Neg(mustBig("99999999999999999999999")), 60})
	if _, err := Verify(testSecret, testSalt, neg, VerifyOptions{Now: clock(t0)}); err != ErrExpired {
		t.Fatalf("huge negative signed_at: err = %v, want ErrExpired", err)
	}
	zero := signTerm(t, Tuple{"data", ms, 0.0})
	if _, err := Verify(testSecret, testSalt, zero, VerifyOptions{Now: clock(t0)}); err != ErrExpired {
		t.Fatalf("max_age 0.0: err = %v, want ErrExpired", err)
	}
}

func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			salt := fmt.Sprint("salt-", g%3)
			for i := range 50 {
				tok, err := Sign(testSecret, salt, i, SignOptions{SignedAt: t0})
				if err != nil {
					t.Error(err)
					return
				}
				got, err := Verify(testSecret, salt, tok, VerifyOptions{Now: clock(t0)})
				if err != nil || got != int64(i) {
					t.Errorf("Verify = %#v, %v; want %d", got, err, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzVerify(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		p, _ := hex.DecodeString(c.PayloadETFHex)
		f.Add(c.Token, p)
	}
	ms := t0.UnixMilli()
	for _, term := range []any{
		Tuple{"data", ms}, map[Atom]any{"data": 1, "signed": ms}, Tuple{1, ms, Atom("infinity")},
		Tuple{1, ms, 1.5}, Tuple{1, mustBig("123456789012345678901234567890"), 60},
	} {
		p, _ := EncodeTerm(term)
		f.Add("SFMyNTY..", p)
	}
	f.Add("SFMzODQ.e30.", []byte(`{"data":[1,2.5,{"a":null}],"signed":1700000000000,"max_age":"infinity"}`))
	f.Fuzz(func(t *testing.T, tok string, payload []byte) {
		for _, tk := range []string{tok, signRaw(t, payload)} {
			for _, opts := range []VerifyOptions{{Now: clock(t0)}, {NoMaxAge: true}, {MaxAge: time.Hour, Now: clock(t0)}} {
				_, err := Verify(testSecret, testSalt, tk, opts)
				if err != nil && err != ErrExpired && err != ErrMissing && !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify(%q): unexpected error %v", tk, err)
				}
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	data := map[string]any{"user_id": 42, "role": "admin"}
	for _, format := range []Format{FormatETF, FormatJSON} {
		b.Run([]string{"ETF", "JSON"}[format], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Sign(testSecret, testSalt, data, SignOptions{SignedAt: t0, Format: format}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	data := map[string]any{"user_id": 42, "role": "admin"}
	for _, format := range []Format{FormatETF, FormatJSON} {
		b.Run([]string{"ETF", "JSON"}[format], func(b *testing.B) {
			tok, err := Sign(testSecret, testSalt, data, SignOptions{SignedAt: t0, Format: format})
			if err != nil {
				b.Fatal(err)
			}
			opts := VerifyOptions{Now: clock(t0)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(testSecret, testSalt, tok, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
