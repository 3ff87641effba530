package plume

import "net/http"

// longPoll serves the long-poll transport (issue: long-poll).
type longPoll struct{ e *Endpoint }

func newLongPoll(e *Endpoint) *longPoll { return &longPoll{e: e} }

func (lp *longPoll) serve(w http.ResponseWriter, r *http.Request, s *Socket) {
	http.NotFound(w, r)
}

func (lp *longPoll) closeAll() {}
