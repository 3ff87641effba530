package plume

import "sync"

// mailbox runs posted funcs one at a time, in order, on a goroutine that
// exists only while there is work. An idle channel therefore holds no
// goroutine, which keeps memory per joined channel small.
type mailbox struct {
	mu      sync.Mutex
	q       []func()
	running bool
	closed  bool
	idle    chan struct{} // closed when a closed mailbox has drained
}

// hold marks the mailbox busy so that posts queue until release; the caller
// runs on its own goroutine meanwhile (used for the synchronous join).
func (m *mailbox) hold() {
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
}

// release ends a hold, starting a runner if work queued meanwhile.
func (m *mailbox) release() {
	m.mu.Lock()
	if len(m.q) > 0 {
		m.mu.Unlock()
		go m.run()
		return
	}
	m.running = false
	m.signalIdleLocked()
	m.mu.Unlock()
}

func (m *mailbox) post(f func()) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.q = append(m.q, f)
	if m.running {
		m.mu.Unlock()
		return true
	}
	m.running = true
	m.mu.Unlock()
	go m.run()
	return true
}

func (m *mailbox) run() {
	for {
		m.mu.Lock()
		if len(m.q) == 0 {
			m.running = false
			m.q = nil
			m.signalIdleLocked()
			m.mu.Unlock()
			return
		}
		f := m.q[0]
		m.q[0] = nil
		m.q = m.q[1:]
		m.mu.Unlock()
		f()
	}
}

// close refuses further posts and drops queued ones; it is called from the
// running func itself when the channel stops.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.q = nil
	m.signalIdleLocked()
	m.mu.Unlock()
}

// done returns a channel closed once the mailbox is closed and idle.
func (m *mailbox) done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idle == nil {
		m.idle = make(chan struct{})
		m.signalIdleLocked()
	}
	return m.idle
}

func (m *mailbox) signalIdleLocked() {
	if m.idle == nil || !m.closed || m.running {
		return
	}
	select {
	case <-m.idle:
	default:
		close(m.idle)
	}
}
