package broadcastapi

import "time"

// SetClock replaces the handler's clock, for tests of the signature skew.
func SetClock(h *Handler, now func() time.Time) { h.now = now }
