package plume

// LongPollPolls returns how many long-poll GETs are under way on ep's
// sessions, so that tests can act while a poll waits (tests only).
func LongPollPolls(ep *Endpoint) int {
	ep.lp.mu.Lock()
	defer ep.lp.mu.Unlock()
	n := 0
	for _, s := range ep.lp.sessions {
		s.mu.Lock()
		n += s.polls
		s.mu.Unlock()
	}
	return n
}
