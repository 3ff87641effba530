package token

import (
	"cmp"
	"math"
	"math/big"
	"slices"
	"strings"
)

// compareTerms orders decoded terms the way Erlang orders map keys:
//
//	integer < float < atom < reference < fun < port < pid < tuple < map
//	< [] < non-empty list < binary
//
// In map key order every integer sorts before every float (1 and 1.0 are
// different keys). Atoms compare by name, code point by code point (which is
// UTF-8 byte order); tuples by size, then element by element; maps by size,
// then keys in order, then values in key order; lists element by element,
// a proper prefix first; binaries byte by byte.
func compareTerms(a, b any) int {
	ra, rb := termRank(a), termRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch a := a.(type) {
	case int64:
		switch b := b.(type) {
		case int64:
			return cmp.Compare(a, b)
		case *big.Int:
			return -b.Sign() // b is outside the int64 range
		}
	case *big.Int:
		switch b := b.(type) {
		case int64:
			return a.Sign()
		case *big.Int:
			return a.Cmp(b)
		}
	case float64:
		b := b.(float64)
		if c := cmp.Compare(a, b); c != 0 {
			return c
		}
		// -0.0 and 0.0 are distinct keys since OTP 27; order -0.0 first.
		return -cmp.Compare(boolInt(math.Signbit(a)), boolInt(math.Signbit(b)))
	case string:
		return strings.Compare(a, b.(string))
	case Tuple:
		b := b.(Tuple)
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		for i := range a {
			if c := compareTerms(a[i], b[i]); c != 0 {
				return c
			}
		}
		return 0
	}
	switch ra {
	case rankAtom:
		return strings.Compare(atomName(a), atomName(b))
	case rankMap:
		return compareMaps(sortedMap(a), sortedMap(b))
	case rankNil:
		return 0
	case rankList:
		ae, at := listParts(a)
		be, bt := listParts(b)
		return compareLists(ae, at, be, bt)
	}
	return 0
}

const (
	rankInteger = iota
	rankFloat
	rankAtom
	rankTuple = rankAtom + 4 // reference, fun, port and pid sort between
	rankMap   = rankTuple + 1
	rankNil   = rankMap + 1
	rankList  = rankNil + 1
	rankBin   = rankList + 1
	rankOther = rankBin + 1
)

func termRank(v any) int {
	switch v := v.(type) {
	case int64, *big.Int:
		return rankInteger
	case float64:
		return rankFloat
	case nil, bool, Atom:
		return rankAtom
	case Tuple:
		return rankTuple
	case Map, map[string]any:
		return rankMap
	case []any:
		if len(v) == 0 {
			return rankNil
		}
		return rankList
	case ImproperList:
		return rankList
	case string:
		return rankBin
	}
	return rankOther
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func atomName(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case Atom:
		return string(v)
	}
	return ""
}

// sortedMap returns the entries of a decoded map in key order.
func sortedMap(v any) Map {
	switch v := v.(type) {
	case Map:
		return v // DecodeTerm returns Map entries sorted
	case map[string]any:
		m := make(Map, 0, len(v))
		for k, val := range v {
			m = append(m, MapEntry{k, val})
		}
		slices.SortFunc(m, func(a, b MapEntry) int { return strings.Compare(a.Key.(string), b.Key.(string)) })
		return m
	}
	return nil
}

func compareMaps(a, b Map) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	for i := range a {
		if c := compareTerms(a[i].Key, b[i].Key); c != 0 {
			return c
		}
	}
	for i := range a {
		if c := compareTerms(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return 0
}

func listParts(v any) ([]any, any) {
	switch v := v.(type) {
	case []any:
		return v, []any{}
	case ImproperList:
		return v.Elems, v.Tail
	}
	return nil, v
}

// compareLists compares [ae... | at] with [be... | bt] cell by cell.
func compareLists(ae []any, at any, be []any, bt any) int {
	for i := 0; ; i++ {
		if i == len(ae) || i == len(be) {
			return compareTerms(listRest(ae[i:], at), listRest(be[i:], bt))
		}
		if c := compareTerms(ae[i], be[i]); c != 0 {
			return c
		}
	}
}

func listRest(elems []any, tail any) any {
	if len(elems) == 0 {
		return tail
	}
	if t, ok := tail.([]any); ok && len(t) == 0 {
		return elems
	}
	return ImproperList{Elems: elems, Tail: tail}
}
