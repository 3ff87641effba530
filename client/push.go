package client

import "time"

// push is phoenix.js's Push: one message that expects a reply, with a
// timeout. Each send takes a fresh ref; the join push is reused for every
// join attempt, which is how each attempt gets a new join ref. All methods
// run with the socket's lock held.
type push struct {
	ch       *Channel
	event    string
	payload  func() ([]byte, bool)
	timeout  time.Duration
	ref      string
	timer    *alarm
	received *Reply
	// hook is the channel's own reaction to a reply (the join's).
	hook func(Reply)
	// waiter receives the result of a user's push, once.
	waiter chan result
}

func (p *push) resend(timeout time.Duration) {
	p.timeout = timeout
	p.reset()
	p.send()
}

// send sends the push with a fresh ref and restarts its timeout, unless it
// already timed out (a buffered push whose time ran out is not sent).
func (p *push) send() {
	if p.hasReceived(StatusTimeout) {
		return
	}
	p.startTimeout()
	data, bin := p.payload()
	p.ch.s.push(outMsg{
		joinRef: p.ch.joinRef(),
		ref:     p.ref,
		topic:   p.ch.topic,
		event:   p.event,
		payload: data,
		binary:  bin,
	}, p.ch)
}

func (p *push) reset() {
	p.cancelRefEvent()
	p.cancelTimeout()
	p.ref = ""
	p.received = nil
}

func (p *push) cancelRefEvent() {
	if p.ref != "" && p.ch.pending[p.ref] == p {
		delete(p.ch.pending, p.ref)
	}
}

func (p *push) cancelTimeout() {
	p.timer.stop()
	p.timer = nil
}

// startTimeout takes a fresh ref, registers for its reply and starts the
// timeout.
func (p *push) startTimeout() {
	p.cancelTimeout()
	p.cancelRefEvent()
	p.ref = p.ch.s.makeRef()
	p.ch.pending[p.ref] = p
	p.timer = p.ch.s.after(p.timeout, func() {
		p.timer = nil
		p.trigger(StatusTimeout)
	})
}

// trigger resolves the push locally with a status and an empty response,
// as if the server had replied (phoenix.js's push.trigger).
func (p *push) trigger(status string) {
	if p.ref != "" && p.ch.pending[p.ref] == p {
		r := Reply{Status: status}
		if status != StatusTimeout {
			r.Response = []byte("{}")
		}
		p.matchReply(r)
	}
}

// matchReply delivers a reply (or a timeout).
func (p *push) matchReply(r Reply) {
	p.cancelRefEvent()
	p.cancelTimeout()
	p.received = &r
	if p.hook != nil {
		p.hook(r)
	}
	if w := p.waiter; w != nil {
		p.waiter = nil
		var err error
		if r.Status == StatusTimeout {
			err = ErrTimeout
		}
		w <- result{r, err}
	}
}

func (p *push) hasReceived(status string) bool {
	return p.received != nil && p.received.Status == status
}

// abandon gives up on a user's push whose caller went away: a buffered
// push is never sent and a reply is ignored.
func (p *push) abandon() {
	p.fail(nil)
}

// fail ends a user's push without a reply, handing err to its waiter.
func (p *push) fail(err error) {
	p.cancelRefEvent()
	p.cancelTimeout()
	p.received = &Reply{Status: StatusTimeout}
	if w := p.waiter; w != nil {
		p.waiter = nil
		if err != nil {
			w <- result{err: err}
		}
	}
	if i := indexPush(p.ch.pushBuffer, p); i >= 0 {
		p.ch.pushBuffer = append(p.ch.pushBuffer[:i], p.ch.pushBuffer[i+1:]...)
	}
}

func indexPush(ps []*push, p *push) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}
