package wire

import "strings"

// Negotiate picks the serializer for a client's vsn parameter with Phoenix's
// rules: an empty vsn means "1.0.0"; V1 serves "~> 1.0.0" and V2 "~> 2.0.0".
// In Elixir "~> x.0.0" is ">= x.0.0 and < x.1.0-0" and pre-releases are
// allowed, so "2.0.3-dev" and "2.0.3+build" are V2, while "2.0.0-rc.1"
// (below 2.0.0) and "2.1.0-dev" are not. Anything else, including a version
// that Elixir's Version.parse refuses ("2.0", "02.0.0", " 2.0.0"), is
// [ErrUnsupportedVsn].
//
// Phoenix applies the "1.0.0" default only when the vsn parameter is absent:
// a present but empty "?vsn=" fails to parse there and is refused. A caller
// that wants that distinction must check for presence itself.
func Negotiate(vsn string) (Serializer, error) {
	if vsn == "" {
		return V1, nil
	}
	major, minor, patch, pre, ok := parseVersion(vsn)
	// Leading zeros are refused, so each number has one spelling.
	if !ok || minor != "0" || (patch == "0" && pre) {
		return nil, ErrUnsupportedVsn
	}
	switch major {
	case "1":
		return V1, nil
	case "2":
		return V2, nil
	}
	return nil, ErrUnsupportedVsn
}

// parseVersion parses MAJOR.MINOR.PATCH[-PRE][+BUILD] as Elixir's
// Version.parse does: numbers are ASCII digits without leading zeros (and of
// any length); PRE and BUILD are non-empty dot-separated identifiers of
// [0-9A-Za-z-], and a numeric PRE identifier has no leading zero. It returns
// the three numbers as text and whether there is a pre-release.
func parseVersion(s string) (major, minor, patch string, pre, ok bool) {
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return "", "", "", false, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		if !validIdents(s[i+1:], true) {
			return "", "", "", false, false
		}
		s, pre = s[:i], true
	}
	major, rest, ok1 := strings.Cut(s, ".")
	minor, patch, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !isVersionNumber(major) || !isVersionNumber(minor) || !isVersionNumber(patch) {
		return "", "", "", false, false
	}
	return major, minor, patch, pre, true
}

// isVersionNumber reports whether p is a non-empty run of ASCII digits
// without a leading zero.
func isVersionNumber(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func validIdents(s string, numericNoZeros bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		allDigits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				allDigits = false
			default:
				return false
			}
		}
		if numericNoZeros && allDigits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}
