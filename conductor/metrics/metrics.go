// Package metrics exposes the conductor's Prometheus metrics: API request
// counts and latencies, nodes by provision and power state (read from the
// store at scrape time), tasks in flight and PXE service counters.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferric-metal/ferric/conductor/store"
)

// Registry holds the conductor's metrics.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds a registry; nodes come from st at scrape time. extra
// collectors (DHCP/TFTP counters, tasks) may be passed in.
func New(st store.Store, extra ...prometheus.Collector) *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferric_api_requests_total", Help: "API requests by method, route and status code.",
	}, []string{"method", "route", "code"})
	r.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ferric_api_request_duration_seconds", Help: "API request latency by method and route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method", "route"})
	r.reg.MustRegister(r.requests, r.latency, &nodes{st: st},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		r.reg.MustRegister(c)
	}
	return r
}

// Observe records one API request: its method, its route pattern (never
// the raw path, so label sets stay bounded), its status code and how
// long it took. The API's router calls it for every request.
func (r *Registry) Observe(method, route string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if code < 100 || code > 599 {
		code = 0
	}
	m := Method(method)
	r.requests.WithLabelValues(m, route, strconv.Itoa(code)).Inc()
	r.latency.WithLabelValues(m, route).Observe(d.Seconds())
}

// Method is the method label of a request: one of the standard HTTP
// methods, or "other", so clients cannot add series with made-up methods.
// (Route labels are the router's route patterns, never raw paths, and codes
// are three digits: every label set is bounded.)
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// Handler serves /metrics.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

var nodesDesc = prometheus.NewDesc("ferric_nodes", "Nodes by provision state, power state and maintenance.",
	[]string{"provision_state", "power_state", "maintenance"}, nil)

// nodes counts nodes from the store's committed view at scrape time.
type nodes struct{ st store.Store }

func (n *nodes) Describe(ch chan<- *prometheus.Desc) { ch <- nodesDesc }

func (n *nodes) Collect(ch chan<- prometheus.Metric) {
	type key struct{ prov, power, maint string }
	counts := map[key]int{}
	for _, x := range n.st.Nodes(nil) {
		p := "none"
		if x.PowerState != nil {
			p = *x.PowerState
		}
		counts[key{x.ProvisionState, p, strconv.FormatBool(x.Maintenance)}]++
	}
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(v), k.prov, k.power, k.maint)
	}
}

// Func is a gauge read from a function at scrape time.
func Func(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}
