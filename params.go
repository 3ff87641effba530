package plume

import (
	"net/url"
	"strings"
)

// Params are connect parameters decoded from the query string with Plug's
// nested-key rules: "a=1" is a string, "a[b]=1" a map, "a[]=1&a[]=2" a list.
type Params map[string]any

// String returns the string parameter key, or "".
func (p Params) String(key string) string {
	s, _ := p[key].(string)
	return s
}

// ParseParams decodes a raw query string. Pairs that do not parse are
// skipped; a later value for the same key wins, as in Plug.
func ParseParams(rawQuery string) Params {
	p := Params{}
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		p.set(key, val)
	}
	return p
}

// set places value at the nested path named by key ("a[b][]"). As in Plug,
// a key is nested only if it ends in "]" and its first "[" is not its first
// byte; what follows that "[" is split on "][" ("a[b]c]" is a["b]c"]), and
// any other key is taken literally ("a[b]c"). A key deeper than
// maxParamDepth is dropped.
func (p Params) set(key, value string) {
	i := strings.IndexByte(key, '[')
	if i <= 0 || key[len(key)-1] != ']' {
		p[key] = value
		return
	}
	inner := key[i+1 : len(key)-1]
	if strings.Count(inner, "][") >= maxParamDepth {
		return
	}
	p[key[:i]] = insert(p[key[:i]], strings.Split(inner, "]["), value)
}

const maxParamDepth = 32

func insert(cur any, path []string, value string) any {
	if len(path) == 0 {
		return value
	}
	if len(path) > maxParamDepth {
		return cur
	}
	seg := path[0]
	if seg == "" {
		list, _ := cur.([]any)
		if len(path) == 1 {
			return append(list, value)
		}
		// "a[][b]=1": add to the last map unless it already has b.
		if n := len(list); n > 0 {
			if m, ok := list[n-1].(map[string]any); ok && len(path) > 1 {
				if _, has := m[path[1]]; !has {
					list[n-1] = insert(m, path[1:], value)
					return list
				}
			}
		}
		return append(list, insert(nil, path[1:], value))
	}
	m, ok := cur.(map[string]any)
	if !ok {
		m = map[string]any{}
	}
	m[seg] = insert(m[seg], path[1:], value)
	return m
}
