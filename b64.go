package plume

import (
	"encoding/base64"
	"strings"
)

// decodeB64NoPad decodes standard base64 with or without padding, and
// tolerates the URL alphabet too.
func decodeB64NoPad(s string) (string, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return string(b), nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}
