package client_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plumehq/plume/client"
	"github.com/plumehq/plume/internal/leakcheck"
)

func TestLargeMessagesAndDecode(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:big", nil)
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7, 0, 255}, 100_000)
	r, err := ch.Push(ctxT(t), "bin_echo", client.Binary(big))
	if err != nil || !r.Binary || !bytes.Equal(r.Response, append([]byte("echo:"), big...)) {
		t.Fatalf("300 KB binary echo: %v %d bytes", err, len(r.Response))
	}
	if err := r.Decode(new(any)); err == nil {
		t.Fatal("decoded a binary reply as JSON")
	}
	r, err = ch.Push(ctxT(t), "echo", map[string]string{"s": string(bytes.Repeat([]byte("é"), 100_000))})
	var v struct{ S string }
	if err != nil || r.Decode(&v) != nil || len(v.S) != 200_000 || r.String()[:3] != "ok " {
		t.Fatalf("large JSON echo: %v", err)
	}
	msgs := make(chan client.Message, 1)
	ch.On("shout", func(m client.Message) { msgs <- m })
	ts.ep.Broadcast(ctxT(t), "room:big", "shout", map[string]int{"n": 5})
	var n struct{ N int }
	if m := recv(t, msgs, "broadcast"); m.Decode(&n) != nil || n.N != 5 {
		t.Fatalf("decode %s", m.Payload)
	}
}

func TestOffAndOffEvent(t *testing.T) {
	leakcheck.Check(t)
	ts := newTestServer(t)
	s := newSocket(t, ts.url(), nil)
	var opens atomic.Int32
	ref := s.OnOpen(func() { opens.Add(1) })
	s.Off(ref)
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := s.Channel("room:off", nil)
	var calls atomic.Int32
	ch.On("shout", func(client.Message) { calls.Add(1) })
	ch.On("shout", func(client.Message) { calls.Add(1) })
	last := make(chan struct{}, 1)
	ch.On("done", func(client.Message) { last <- struct{}{} })
	if _, err := ch.Join(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch.OffEvent("shout")
	ts.ep.Broadcast(ctxT(t), "room:off", "shout", map[string]int{})
	ts.ep.Broadcast(ctxT(t), "room:off", "done", map[string]int{})
	recv(t, last, "done")
	if calls.Load() != 0 || opens.Load() != 0 {
		t.Fatalf("removed handlers ran: %d %d", calls.Load(), opens.Load())
	}
}

func TestPresenceStateOrderAndDeletes(t *testing.T) {
	st := &client.PresenceState{}
	var want []string
	for i := range 100 {
		k := fmt.Sprintf("k%d", i)
		st.Set(k, &client.PresenceEntry{})
		want = append(want, k)
	}
	st.Set("42", &client.PresenceEntry{})
	st.Set("7", &client.PresenceEntry{})
	for i := 0; i < 100; i += 2 { // enough deletes to compact
		st.Delete(fmt.Sprintf("k%d", i))
	}
	st.Set("k0", &client.PresenceEntry{}) // back, at the end
	var exp []string
	exp = append(exp, "7", "42")
	for i := 1; i < 100; i += 2 {
		exp = append(exp, want[i])
	}
	exp = append(exp, "k0")
	if got := st.Keys(); !slices.Equal(got, exp) || st.Len() != len(exp) {
		t.Fatalf("keys %v", got)
	}
	if _, ok := st.Get("k2"); ok {
		t.Fatal("deleted key present")
	}
}

func TestPresenceAccessors(t *testing.T) {
	leakcheck.Check(t)
	rs := newRawServer(t)
	s := newSocket(t, rs.url(), nil)
	go s.Connect(ctxT(t))
	c := rs.accept()
	ch := s.Channel("room:acc", nil)
	p := client.NewPresence(ch, &client.PresenceOptions{StateEvent: "st", DiffEvent: "df"})
	go ch.Join(ctxT(t))
	j := c.nextEvent()
	jr := j[0].(string)
	c.send(fmt.Sprintf(`[%q,%q,"room:acc","phx_reply",{"status":"ok","response":{}}]`, jr, jr))
	c.send(fmt.Sprintf(`[%q,null,"room:acc","st",{"u":{"metas":[{"phx_ref":"1","x":1}],"name":"U"}}]`, jr))
	waitFor(t, "state", func() bool { return len(p.List()) == 1 })
	e := p.List()[0]
	if len(e.Metas) != 1 || e.Metas[0].Ref != "1" || string(e.Fields["name"]) != `"U"` {
		t.Fatalf("entry %+v", e)
	}
	if st := p.State(); st.Len() != 1 {
		t.Fatalf("state %v", st.Keys())
	}
	p.Stop()
	c.send(`[null,null,"room:acc","df",{"joins":{"v":{"metas":[{"phx_ref":"2"}]}},"leaves":{}}]`)
	time.Sleep(30 * time.Millisecond)
	if len(p.Keys()) != 1 {
		t.Fatalf("stopped presence changed: %v", p.Keys())
	}
}
