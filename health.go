package plume

import "net/http"

// Health checks for orchestrators and load balancers.
//
// A rolling deploy of a socket server needs both: liveness says whether to
// restart the process, readiness whether to send it new connections. Once
// [Endpoint.Shutdown] begins, readiness fails at once, so the load balancer
// stops routing new connections here while the drain closes the open ones
// with 1012 and phoenix.js reconnects them to other nodes. Mount them on
// the same mux as the endpoint or on a separate admin port:
//
//	mux.Handle("/healthz", ep.LivenessHandler())
//	mux.Handle("/readyz", ep.ReadinessHandler())
//
// Set the load balancer's readiness interval well below Options.DrainInterval
// times the number of drain batches, so that it notices before the last
// connections are closed.

// LivenessHandler returns a handler that answers 200 "ok" to GET and HEAD for
// as long as the process serves HTTP, draining or not: a draining endpoint
// is healthy and must not be restarted before its drain ends.
func (e *Endpoint) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, r, http.StatusOK, "ok")
	})
}

// ReadinessHandler returns a handler that answers 200 "ok" to GET and HEAD
// while the endpoint accepts connections, and 503 "draining" once
// [Endpoint.Shutdown] has begun ([Endpoint.Draining]), so that load
// balancers stop sending it new connections before the drain closes the
// open ones.
func (e *Endpoint) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.Draining() {
			writeHealth(w, r, http.StatusServiceUnavailable, "draining")
			return
		}
		writeHealth(w, r, http.StatusOK, "ok")
	})
}

// writeHealth writes a health answer that no cache keeps; methods other
// than GET and HEAD get 405.
func writeHealth(w http.ResponseWriter, r *http.Request, status int, body string) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body + "\n"))
	}
}
