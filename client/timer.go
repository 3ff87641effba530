package client

import "time"

// DefaultReconnectAfter is phoenix.js's socket reconnect backoff:
// 10, 50, 100, 150, 200, 250, 500, 1000, 2000 ms, then 5 s for every later
// try. tries counts from 1 and restarts after a successful open.
func DefaultReconnectAfter(tries int) time.Duration {
	steps := [...]int{10, 50, 100, 150, 200, 250, 500, 1000, 2000}
	if tries >= 1 && tries <= len(steps) {
		return time.Duration(steps[tries-1]) * time.Millisecond
	}
	return 5 * time.Second
}

// DefaultRejoinAfter is phoenix.js's channel rejoin backoff: 1, 2, 5 s, then
// 10 s for every later try. tries counts from 1 and restarts after a
// successful join.
func DefaultRejoinAfter(tries int) time.Duration {
	steps := [...]int{1000, 2000, 5000}
	if tries >= 1 && tries <= len(steps) {
		return time.Duration(steps[tries-1]) * time.Millisecond
	}
	return 10 * time.Second
}

// alarm is a timer whose callback runs with the socket's lock held, and
// never after stop or after the socket closed. The cancelled flag is guarded
// by the socket's lock, which closes the race between Stop and a callback
// that already fired and waits for the lock.
type alarm struct {
	t         *time.Timer
	cancelled bool
}

// after schedules f under s.mu after d. Call with s.mu held.
func (s *Socket) after(d time.Duration, f func()) *alarm {
	a := &alarm{}
	a.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if a.cancelled || s.closed {
			return
		}
		a.cancelled = true
		f()
	})
	return a
}

// stop cancels the alarm; nil is a no-op. Call with s.mu held.
func (a *alarm) stop() {
	if a != nil {
		a.cancelled = true
		a.t.Stop()
	}
}

// backoff is phoenix.js's Timer: a callback scheduled with a delay computed
// from the number of tries so far.
type backoff struct {
	s     *Socket
	calc  func(tries int) time.Duration
	fn    func()
	tries int
	a     *alarm
}

// reset clears the tries and cancels the pending callback.
func (b *backoff) reset() {
	b.tries = 0
	b.a.stop()
	b.a = nil
}

// schedule cancels any pending callback and schedules the next try.
func (b *backoff) schedule() {
	b.a.stop()
	b.a = b.s.after(b.calc(b.tries+1), func() {
		b.a = nil
		b.tries++
		b.fn()
	})
}

// cancel stops the pending callback but keeps the tries.
func (b *backoff) cancel() {
	b.a.stop()
	b.a = nil
}
