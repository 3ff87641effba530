package client

// BufferedPushes returns how many pushes wait for ch to join (tests only).
func BufferedPushes(ch *Channel) int {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	return len(ch.pushBuffer)
}
