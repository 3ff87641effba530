package main

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/examples/donations/store"
)

// The contract's rules for what clients send, shared by the channels and
// the HTTP API.

// decodeObject decodes a JSON object, keeping numbers as written. Anything
// else (another JSON value, binary, trailing data) gives ok == false.
func decodeObject(data []byte) (m map[string]any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := d.Token(); err == nil {
		return nil, false // trailing data
	}
	return m, true
}

// payloadObject is decodeObject for a channel payload.
func payloadObject(p plume.Payload) (map[string]any, bool) {
	if p.IsBinary() {
		return nil, false
	}
	return decodeObject(p.Bytes())
}

// integer returns v as an integer if it is a JSON number written without a
// fraction or an exponent, as Elixir's is_integer/1 sees a decoded number
// (1.0 and 1e2 are floats there).
func integer(v any) (*big.Int, bool) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return nil, false
	}
	return new(big.Int).SetString(string(n), 10)
}

// donationFields validates {amount: integer > 0, donor: non-empty string of
// at most 100 code points}. Amounts beyond an int64 are refused too (the
// store could not add them up).
func donationFields(m map[string]any) (amount int64, donor string, ok bool) {
	n, ok := integer(m["amount"])
	if !ok || n.Sign() <= 0 || !n.IsInt64() {
		return 0, "", false
	}
	donor, ok = m["donor"].(string)
	if !ok || donor == "" || utf8.RuneCountInString(donor) > store.MaxDonorLen {
		return 0, "", false
	}
	return n.Int64(), donor, true
}

// raisedField validates update_campaign's {raised: integer >= 0} and returns
// it in canonical form. It is only announced, never added up, so any size
// goes.
func raisedField(m map[string]any) (json.Number, bool) {
	n, ok := integer(m["raised"])
	if !ok || n.Sign() < 0 {
		return "", false
	}
	return json.Number(n.String()), true
}

// timestamp formats t as ISO 8601 in UTC with microseconds and a Z, as
// Elixir's DateTime.to_iso8601 does for DateTime.utc_now().
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// unixSeconds is the presence meta's online_at: Unix seconds as a string.
func unixSeconds(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
