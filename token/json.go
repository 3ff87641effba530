package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// jsonPayload is the FormatJSON payload.
type jsonPayload struct {
	Data   json.RawMessage `json:"data"`
	Signed int64           `json:"signed"`
	MaxAge json.RawMessage `json:"max_age"`
}

func encodeJSONPayload(data any, signedMs int64, maxAge any) ([]byte, error) {
	d, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var age []byte
	switch a := maxAge.(type) {
	case Atom: // infinity
		age = []byte(`"` + string(a) + `"`)
	case int64:
		age = strconv.AppendInt(nil, a, 10)
	case float64:
		age = strconv.AppendFloat(nil, a, 'g', -1, 64)
	}
	return json.Marshal(jsonPayload{Data: d, Signed: signedMs, MaxAge: age})
}

// decodeJSONPayload decodes a FormatJSON payload into the forms
// decodePayload returns for ETF.
func decodeJSONPayload(p []byte) (data, signed, maxAge any, err error) {
	v, err := decodeJSON(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	m, _ := v.(map[string]any)
	data, haveData := m["data"]
	signed, haveSigned := m["signed"]
	maxAge, haveAge := m["max_age"]
	if !haveData || !haveSigned || !haveAge {
		return nil, nil, nil, fmt.Errorf("%w: unexpected payload shape", ErrInvalid)
	}
	if maxAge == "infinity" {
		maxAge = atomInfinity
	}
	return data, signed, maxAge, nil
}

// decodeJSON decodes one JSON value, with numbers as int64, *big.Int or
// float64.
func decodeJSON(p []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON payload")
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return jsonNumber(v)
	case []any:
		for i, x := range v {
			c, err := convertNumbers(x)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
	case map[string]any:
		for k, x := range v {
			c, err := convertNumbers(x)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
	}
	return v, nil
}

func jsonNumber(n json.Number) (any, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if z, ok := new(big.Int).SetString(s, 10); ok {
			return z, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("bad number %s", s)
	}
	return f, nil
}
