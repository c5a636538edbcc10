package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// fakeDHCP is a DHCP server's counters and ACK time quantiles.
type fakeDHCP struct {
	stats dhcp.Stats
	q     map[float64]time.Duration
}

func (f fakeDHCP) Stats() dhcp.Stats { return f.stats }

func (f fakeDHCP) AckLatency(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	for i, q := range qs {
		out[i] = f.q[q]
	}
	return out
}

// TestDHCPCollector: the serving DHCP server's counters and ACK time
// quantiles over a real scrape; nothing while no server runs here (another
// conductor leads DHCP), and no quantiles before the first ACK.
func TestDHCPCollector(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	serving := []DHCPServer{
		nil,
		fakeDHCP{stats: dhcp.Stats{Received: 3, Offers: 1}},
		fakeDHCP{stats: dhcp.Stats{Received: 10, Offers: 5, Acks: 4, Dropped: 1},
			q: map[float64]time.Duration{0.5: 250 * time.Microsecond, 0.9: time.Millisecond, 0.99: 4 * time.Millisecond}},
	}
	var now atomic.Value // of serving[i], in a struct (nil is not storable)
	type cur struct{ s DHCPServer }
	now.Store(cur{})
	reg := New(st, DHCP(func() DHCPServer { return now.Load().(cur).s }))
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for i, tc := range []struct {
		want, absent []string
	}{
		{absent: []string{"ferric_dhcp_packets_total", "ferric_dhcp_ack_latency_seconds{"}},
		{want: []string{`ferric_dhcp_packets_total{kind="received"} 3`, `ferric_dhcp_packets_total{kind="offer"} 1`,
			`ferric_dhcp_packets_total{kind="ack"} 0`}, absent: []string{"ferric_dhcp_ack_latency_seconds{"}},
		{want: []string{`ferric_dhcp_packets_total{kind="ack"} 4`, `ferric_dhcp_packets_total{kind="dropped"} 1`,
			`ferric_dhcp_ack_latency_seconds{quantile="0.5"} 0.00025`, `ferric_dhcp_ack_latency_seconds{quantile="0.9"} 0.001`,
			`ferric_dhcp_ack_latency_seconds{quantile="0.99"} 0.004`}},
	} {
		now.Store(cur{serving[i]})
		body := scrape()
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("case %d: /metrics lacks %q", i, w)
			}
		}
		for _, a := range tc.absent {
			if strings.Contains(body, a) {
				t.Errorf("case %d: /metrics has %q", i, a)
			}
		}
	}
}
