package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The bench speaks two wire protocols with the same connections, payloads
// and measurements, so that Plume can be compared with a peer by one tool:
//
//   - "phoenix": Phoenix Channels V2 JSON, for Plume (or Phoenix) with a
//     "bench:*" channel, see bench-server;
//   - "centrifuge": Centrifuge's protocol v2 JSON, for a Centrifuge server
//     with publish enabled, see bench/centrifuge.
//
// Only framing differs. The bench payload (see payloadHead) is the same JSON
// object in both and is located in a received frame by a marker, so no JSON
// decoding runs per message on either.

// wireProto is what differs between the protocols.
type wireProto interface {
	// endpoint turns -url into the WebSocket URL to dial.
	endpoint(raw string) (string, error)
	// join is the frame a connection sends once dialled: to subscribe to
	// topic, as user (presence) when user is not empty.
	join(topic, user string) []byte
	// joinReply reports whether data carries the join's reply and, if so,
	// whether the join was refused.
	joinReply(data []byte) (ok bool, err error)
	// afterJoin is sent once the join succeeded (nil: nothing).
	afterJoin(topic string, presence bool) []byte
	// publish returns the publish frame's text around the payload.
	publish(topic string) (prefix, suffix string)
	// marker precedes a bench payload in a received frame; its last byte
	// is the payload's '{'. A frame may hold several messages.
	marker() []byte
	// heartbeat is what a client sends periodically to stay connected
	// (nil: the server pings instead).
	heartbeat() []byte
	// pong returns the reply to a server ping in data, or nil.
	pong(data []byte) []byte
}

func protoByName(name string) (wireProto, error) {
	switch name {
	case "phoenix", "":
		return phoenixProto{}, nil
	case "centrifuge":
		return centrifugeProto{}, nil
	}
	return nil, fmt.Errorf("-protocol %q: want phoenix or centrifuge", name)
}

// phoenixProto is Phoenix Channels V2 JSON: one message per frame.
type phoenixProto struct{}

func (phoenixProto) endpoint(raw string) (string, error) {
	u, err := parseLoopbackURL(raw)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/websocket"
	u.RawQuery = "vsn=2.0.0"
	return u.String(), nil
}

func (phoenixProto) join(topic, user string) []byte {
	p := "{}"
	if user != "" {
		p = `{"user":` + strconv.Quote(user) + `}`
	}
	return []byte(`["1","1",` + strconv.Quote(topic) + `,"phx_join",` + p + `]`)
}

func (phoenixProto) joinReply(data []byte) (bool, error) {
	if !bytes.HasPrefix(data, []byte(`["1","1",`)) || !bytes.Contains(data, []byte(`"phx_reply"`)) {
		return false, nil
	}
	if !bytes.Contains(data, []byte(`"status":"ok"`)) {
		return true, fmt.Errorf("join refused: %s", data)
	}
	return true, nil
}

func (phoenixProto) afterJoin(string, bool) []byte { return nil }

func (phoenixProto) publish(topic string) (string, string) {
	return `["1",null,` + strconv.Quote(topic) + `,"publish",`, `]`
}

func (phoenixProto) marker() []byte { return []byte(`"msg",{`) }

func (phoenixProto) heartbeat() []byte { return []byte(`[null,"hb","phoenix","heartbeat",{}]`) }

func (phoenixProto) pong([]byte) []byte { return nil }

// centrifugeProto is Centrifuge's protocol v2 JSON: commands and replies
// are JSON objects, several to a frame separated by newlines; the server
// pings with an empty object, which the client answers with one.
type centrifugeProto struct{}

func (centrifugeProto) endpoint(raw string) (string, error) {
	u, err := parseLoopbackURL(raw)
	if err != nil {
		return "", err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/connection/websocket"
	}
	return u.String(), nil
}

// join connects (id 1) and subscribes (id 2) in one frame, as the
// official SDKs batch them.
func (centrifugeProto) join(topic, user string) []byte {
	connect := `{"id":1,"connect":{}}`
	if user != "" {
		connect = `{"id":1,"connect":{"data":{"user":` + strconv.Quote(user) + `}}}`
	}
	return []byte(connect + "\n" + `{"id":2,"subscribe":{"channel":` + strconv.Quote(topic) + `}}`)
}

var (
	cfSubscribed = []byte(`{"id":2,"subscribe":`)
	cfSubError   = []byte(`{"id":2,"error":`)
	cfConnError  = []byte(`{"id":1,"error":`)
)

func (centrifugeProto) joinReply(data []byte) (bool, error) {
	switch {
	case bytes.Contains(data, cfSubscribed):
		return true, nil
	case bytes.Contains(data, cfSubError), bytes.Contains(data, cfConnError):
		return true, fmt.Errorf("subscribe refused: %s", data)
	}
	return false, nil
}

// afterJoin asks for the presence list (id 3): join pushes bring the rest.
func (centrifugeProto) afterJoin(topic string, presence bool) []byte {
	if !presence {
		return nil
	}
	return []byte(`{"id":3,"presence":{"channel":` + strconv.Quote(topic) + `}}`)
}

// publish uses the publish command; the server replies to each (the
// publisher ignores the replies), one reply per broadcast.
func (centrifugeProto) publish(topic string) (string, string) {
	return `{"id":1,"publish":{"channel":` + strconv.Quote(topic) + `,"data":`, `}}`
}

func (centrifugeProto) marker() []byte { return []byte(`"pub":{"data":{`) }

func (centrifugeProto) heartbeat() []byte { return nil }

func (centrifugeProto) pong(data []byte) []byte {
	// A ping is an empty object, alone or among other messages.
	if !bytes.Contains(data, []byte("{}")) {
		return nil
	}
	if bytes.Equal(data, []byte("{}")) || bytes.HasPrefix(data, []byte("{}\n")) ||
		bytes.Contains(data, []byte("\n{}\n")) || bytes.HasSuffix(data, []byte("\n{}")) {
		return []byte("{}")
	}
	return nil
}
