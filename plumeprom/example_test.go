package plumeprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plumehq/plume"
	"github.com/plumehq/plume/plumeprom"
)

// Wire the metrics into an endpoint and serve them at /metrics.
func Example() {
	reg := prometheus.NewRegistry() // or leave Registerer nil for the default registry
	m, err := plumeprom.New(plumeprom.Options{Registerer: reg})
	if err != nil {
		panic(err)
	}
	ep := plume.NewEndpoint(plume.Options{Telemetry: m})
	mux := http.NewServeMux()
	mux.Handle("/socket/", ep)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ep.Broadcast(context.Background(), "room:1", "news", map[string]string{"title": "hello"})

	// Scrape, as Prometheus would, and show the broadcast counters.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "plume_broadcast") && !strings.Contains(line, "duration") {
			fmt.Println(line)
		}
	}
	// Output:
	// plume_broadcast_deliveries_total 0
	// plume_broadcasts_total 1
}
