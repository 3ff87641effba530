package client

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// dispatcher runs user callbacks one at a time, in the order the socket
// produced them, on a goroutine that exists only while callbacks are queued.
// The socket's state machine never waits for user code: it queues callbacks
// here while holding its lock and returns.
type dispatcher struct {
	mu      sync.Mutex
	q       []func()
	running bool
	gid     uint64        // goroutine id of the running dispatcher
	idle    chan struct{} // closed and replaced when the queue drains
}

func (d *dispatcher) post(f func()) {
	d.mu.Lock()
	d.q = append(d.q, f)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
}

func (d *dispatcher) run() {
	id := goid()
	d.mu.Lock()
	d.gid = id
	d.mu.Unlock()
	for {
		d.mu.Lock()
		q := d.q
		if len(q) == 0 {
			d.running = false
			d.gid = 0
			if d.idle != nil {
				close(d.idle)
				d.idle = nil
			}
			d.mu.Unlock()
			return
		}
		d.q = nil
		d.mu.Unlock()
		for i, f := range q {
			q[i] = nil
			f()
		}
	}
}

// wait blocks until no callback is queued or running, or until timeout. It
// returns at once when called from a callback, which would otherwise wait
// for itself.
func (d *dispatcher) wait(timeout time.Duration) {
	d.mu.Lock()
	if !d.running || d.gid == goid() {
		d.mu.Unlock()
		return
	}
	if d.idle == nil {
		d.idle = make(chan struct{})
	}
	idle := d.idle
	d.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// goid returns the current goroutine's id. It is used only to let Close,
// called from a handler, skip waiting for the handler goroutine.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}
