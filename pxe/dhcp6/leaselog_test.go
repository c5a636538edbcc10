package dhcp6

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// TestLogLeasesReply: over the IPv6 lease log, a Request's Reply comes
// with its lease record already in the file (36 bytes); a server started
// again on the log advertises each client its address and a new client
// another; and a log that cannot take the record (closed) gets no Reply
// at all, only an error counted.
func TestLogLeasesReply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dhcp6-leases.log")
	open := func() *LogLeases {
		l, err := OpenLogLeases(path, dhcp.LogOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	h := hosts(mac(1), mac(2), mac(3))
	ll := open()
	s := testServer(t, h, ll, nil)
	got := map[byte]netip.Addr{}
	for i, hw := range []byte{1, 2} {
		adv := exchange(t, s, mac(hw), solicit(t, mac(hw)))
		rep := exchange(t, s, mac(hw), request(t, adv))
		if rep == nil || rep.MessageType != dhcpv6.MessageTypeReply {
			t.Fatalf("no Reply for %v", mac(hw))
		}
		got[hw] = addrOf(t, rep)
		// Written before the Reply: the file has the record already, not
		// only the process's memory.
		if fi, err := os.Stat(path); err != nil || fi.Size() != int64(i+1)*36 {
			t.Fatalf("lease log after %d Replies: %v, %v; want %d bytes", i+1, fi, err, (i+1)*36)
		}
	}
	if err := ll.Close(); err != nil {
		t.Fatal(err)
	}
	// The closed log refuses the record: no Reply promises the address.
	adv := exchange(t, s, mac(3), solicit(t, mac(3)))
	if rep := exchange(t, s, mac(3), request(t, adv)); rep != nil {
		t.Fatalf("Request over a closed lease log answered %s, want nothing", rep.MessageType)
	}
	if st := s.Stats(); st.Errors != 1 {
		t.Errorf("Stats() = %+v, want 1 error", st)
	}

	s2 := testServer(t, h, open(), nil)
	for hw, ip := range got {
		if a := addrOf(t, exchange(t, s2, mac(hw), solicit(t, mac(hw)))); a != ip {
			t.Errorf("after a restart %v is advertised %v, want its lease %v", mac(hw), a, ip)
		}
	}
	if a := addrOf(t, exchange(t, s2, mac(3), solicit(t, mac(3)))); a == got[1] || a == got[2] {
		t.Errorf("a new client is advertised %v, held by another", a)
	}
}
