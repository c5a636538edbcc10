package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// DHCPServer is what the DHCP collector reads from the serving DHCPv4
// server.
type DHCPServer interface {
	Stats() dhcp.Stats
	AckLatency(qs ...float64) []time.Duration
}

// DHCP collects the packet counters and the self-measured REQUEST→ACK
// time of the DHCPv4 server current returns (nil while this conductor
// serves no DHCP, e.g. another one is the leader). The counters start
// again from zero when a new server starts (a leadership change).
func DHCP(current func() DHCPServer) prometheus.Collector {
	return &dhcpCollector{current: current}
}

var (
	dhcpPacketsDesc = prometheus.NewDesc("ferric_dhcp_packets_total",
		"DHCPv4 datagrams by outcome: received, malformed, dropped (queue full), ignored, unknown (MAC not enrolled), "+
			"offer, ack, nak, release, decline, error.", []string{"kind"}, nil)
	dhcpAckDesc = prometheus.NewDesc("ferric_dhcp_ack_latency_seconds",
		"Quantiles of the DHCPv4 server's own REQUEST→ACK time (socket read to ACK sent, lease write included) "+
			"since it started, to within 19 %.", []string{"quantile"}, nil)
)

// dhcpQuantiles are the quantiles of ferric_dhcp_ack_latency_seconds.
var dhcpQuantiles = []float64{0.5, 0.9, 0.99}

type dhcpCollector struct{ current func() DHCPServer }

func (c *dhcpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dhcpPacketsDesc
	ch <- dhcpAckDesc
}

func (c *dhcpCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.current()
	if s == nil {
		return
	}
	st := s.Stats()
	for _, kv := range []struct {
		kind string
		n    uint64
	}{
		{"received", st.Received}, {"malformed", st.Malformed}, {"dropped", st.Dropped}, {"ignored", st.Ignored},
		{"unknown", st.Unknown}, {"offer", st.Offers}, {"ack", st.Acks}, {"nak", st.Naks},
		{"release", st.Releases}, {"decline", st.Declines}, {"error", st.Errors},
	} {
		ch <- prometheus.MustNewConstMetric(dhcpPacketsDesc, prometheus.CounterValue, float64(kv.n), kv.kind)
	}
	if st.Acks == 0 {
		return
	}
	for i, d := range s.AckLatency(dhcpQuantiles...) {
		ch <- prometheus.MustNewConstMetric(dhcpAckDesc, prometheus.GaugeValue, d.Seconds(),
			strconv.FormatFloat(dhcpQuantiles[i], 'f', -1, 64))
	}
}
