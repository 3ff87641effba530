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

// set places value at the nested path named by key ("a[b][]").
func (p Params) set(key, value string) {
	root, rest, nested := strings.Cut(key, "[")
	if !nested || root == "" {
		p[key] = value
		return
	}
	var path []string
	rest = "[" + rest
	for strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	if len(path) == 0 {
		p[key] = value
		return
	}
	p[root] = insert(p[root], path, value)
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
