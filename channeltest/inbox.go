package channeltest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/wire"
)

// Ref identifies a message the test pushed, to match its reply.
type Ref string

type kind uint8

const (
	kindPush      kind = iota // a channel push: join_ref set, ref null
	kindReply                 // phx_reply
	kindBroadcast             // a fastlaned broadcast (refs null), or one seen by a Subscription
	kindControl               // phx_close or phx_error: ref = join_ref
	kindBad                   // a frame the kit could not decode
)

// message is one server frame as the client sees it.
type message struct {
	kind    kind
	joinRef Ref // "" is null
	ref     Ref
	topic   string
	event   string // "phx_reply" for replies
	status  string // replies only
	payload plume.Payload
	raw     string // kindBad only
}

func (m *message) String() string {
	switch m.kind {
	case kindReply:
		return fmt.Sprintf("%s reply to ref %s: %s %s", quote(m.topic), m.ref, quote(m.status), short(m.payload))
	case kindBroadcast:
		return fmt.Sprintf("%s broadcast %s %s", quote(m.topic), quote(m.event), short(m.payload))
	case kindControl:
		return fmt.Sprintf("%s %s (join ref %s) %s", quote(m.topic), m.event, m.joinRef, short(m.payload))
	case kindBad:
		return "undecodable frame " + m.raw
	}
	return fmt.Sprintf("%s push %s %s", quote(m.topic), quote(m.event), short(m.payload))
}

func short(p plume.Payload) string {
	s := p.String()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func quote(s string) string { return strconv.Quote(s) }

// decodeFrame decodes a V2 server frame independently of package wire's
// encoders, so that the kit checks what the client would really parse.
func decodeFrame(f wire.Frame) *message {
	if f.Binary {
		return decodeBinary(f.Data)
	}
	bad := &message{kind: kindBad, raw: string(f.Data)}
	var parts []json.RawMessage
	if err := json.Unmarshal(f.Data, &parts); err != nil || len(parts) != 5 {
		return bad
	}
	var joinRef, ref *string
	m := &message{}
	if json.Unmarshal(parts[0], &joinRef) != nil || json.Unmarshal(parts[1], &ref) != nil ||
		json.Unmarshal(parts[2], &m.topic) != nil || json.Unmarshal(parts[3], &m.event) != nil {
		return bad
	}
	if joinRef != nil {
		m.joinRef = Ref(*joinRef)
	}
	if ref != nil {
		m.ref = Ref(*ref)
	}
	switch {
	case m.event == wire.EventReply:
		var r struct {
			Response json.RawMessage `json:"response"`
			Status   *string         `json:"status"`
		}
		if json.Unmarshal(parts[4], &r) != nil || r.Status == nil {
			return bad
		}
		m.kind, m.status, m.payload = kindReply, *r.Status, plume.JSONPayload(r.Response)
		return m
	case m.event == wire.EventClose || m.event == wire.EventError:
		m.kind = kindControl
	case joinRef == nil && ref == nil:
		m.kind = kindBroadcast
	default:
		m.kind = kindPush
	}
	if !wire.IsJSONObject(parts[4]) {
		return bad
	}
	m.payload = plume.JSONPayload(parts[4])
	return m
}

// decodeBinary decodes V2 binary frames: push <<0, jr_len, topic_len,
// event_len, ...>>, reply <<1, jr_len, ref_len, topic_len, status_len, ...>>
// and broadcast <<2, topic_len, event_len, ...>>.
func decodeBinary(b []byte) *message {
	bad := &message{kind: kindBad, raw: fmt.Sprintf("<binary % x>", b)}
	if len(b) == 0 {
		return bad
	}
	n := map[byte]int{0: 3, 1: 4, 2: 2}[b[0]]
	if n == 0 || len(b) < 1+n {
		return bad
	}
	rest := b[1+n:]
	fields := make([]string, n)
	for i := range fields {
		l := int(b[1+i])
		if len(rest) < l {
			return bad
		}
		fields[i], rest = string(rest[:l]), rest[l:]
	}
	payload := plume.BinaryPayload(slices.Clone(rest))
	switch b[0] {
	case 0:
		return &message{kind: kindPush, joinRef: Ref(fields[0]), topic: fields[1], event: fields[2], payload: payload}
	case 1:
		return &message{kind: kindReply, joinRef: Ref(fields[0]), ref: Ref(fields[1]), topic: fields[2],
			event: wire.EventReply, status: fields[3], payload: payload}
	}
	return &message{kind: kindBroadcast, topic: fields[0], event: fields[1], payload: payload}
}

// inbox is a mailbox of received messages: the transport or a subscription
// appends from any goroutine, and the test's goroutine looks for matches.
type inbox struct {
	mu   sync.Mutex
	msgs []*message
	wake chan struct{} // closed and cleared by put
}

func (b *inbox) put(m *message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}

// take waits up to timeout for the first message that satisfies match and
// removes it (receive with a pattern).
func (b *inbox) take(match func(*message) bool, timeout time.Duration) (*message, bool) {
	return b.await(match, timeout, true)
}

// find is take without removing.
func (b *inbox) find(match func(*message) bool, timeout time.Duration) (*message, bool) {
	return b.await(match, timeout, false)
}

// await runs match outside the lock (it may call the test's predicates).
// Only the test's goroutine removes messages, so the ones already checked
// keep their places while it waits.
func (b *inbox) await(match func(*message) bool, timeout time.Duration, remove bool) (*message, bool) {
	var timer *time.Timer
	checked := 0
	for {
		b.mu.Lock()
		fresh := b.msgs[checked:len(b.msgs):len(b.msgs)]
		b.mu.Unlock()
		for _, m := range fresh {
			checked++
			if match(m) {
				if remove {
					b.remove(m)
				}
				return m, true
			}
		}
		b.mu.Lock()
		if len(b.msgs) > checked {
			b.mu.Unlock()
			continue
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			// One last look at whatever arrived meanwhile.
			b.mu.Lock()
			fresh := b.msgs[checked:len(b.msgs):len(b.msgs)]
			b.mu.Unlock()
			for _, m := range fresh {
				if match(m) {
					if remove {
						b.remove(m)
					}
					return m, true
				}
			}
			return nil, false
		}
	}
}

func (b *inbox) remove(m *message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.msgs, m); i >= 0 {
		b.msgs = slices.Delete(b.msgs, i, i+1)
	}
}

// pending describes the messages not yet consumed, for failure messages.
func (b *inbox) pending(what string, keep func(*message) bool) string {
	b.mu.Lock()
	msgs := slices.Clone(b.msgs)
	b.mu.Unlock()
	var sb strings.Builder
	n := 0
	for _, m := range msgs {
		if keep != nil && !keep(m) {
			continue
		}
		if n == 20 {
			sb.WriteString("    …\n")
			break
		}
		fmt.Fprintf(&sb, "    %s\n", m)
		n++
	}
	if n == 0 {
		return "  " + what + " received and not yet asserted: none"
	}
	return "  " + what + " received and not yet asserted:\n" + strings.TrimSuffix(sb.String(), "\n")
}

// waitChan waits up to timeout for ch to be closed.
func waitChan(ch <-chan struct{}, timeout time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
