package dhcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func openLog(t *testing.T, path string, opts LogOptions) *LogLeases {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := OpenLogLeases(path, opts)
	if err != nil {
		t.Fatalf("OpenLogLeases(%s): %v", path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func leaseMap(t *testing.T, l Leases) map[netip.Addr]string {
	t.Helper()
	ls, err := l.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Addr]string{}
	for _, x := range ls {
		m[x.IP] = x.MAC.String() + " " + x.Expiry.UTC().Format(time.RFC3339Nano)
	}
	return m
}

func testLease(i int) Lease { return testLeaseOf(IPv4Leases, i) }

// testLeaseOf is lease i of a family: 10.79.x.y or fd00:79::x:y.
func testLeaseOf(fam LeaseFamily, i int) Lease {
	ip := netip.AddrFrom4([4]byte{10, 79, byte(i >> 8), byte(i)})
	if fam.addrLen == 16 {
		ip = netip.AddrFrom16([16]byte{0xfd, 0, 0x79, 14: byte(i >> 8), 15: byte(i)})
	}
	return Lease{
		IP:     ip,
		MAC:    net.HardwareAddr{0x52, 0x54, 0, 1, byte(i >> 8), byte(i)},
		Expiry: time.Unix(1_800_000_000+int64(i), 123),
	}
}

// families are the lease log's address families, by name.
var families = []LeaseFamily{IPv4Leases, IPv6Leases}

// TestLogRecordFormat pins the record layout of each family: its length,
// kind, address, MAC, zero byte, expiry and CRC-32C; a record of one
// family is not a valid record of the other, and a lease of the other
// family is refused.
func TestLogRecordFormat(t *testing.T) {
	exp := time.Unix(0, 0x0102030405060708)
	mac := net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}
	for _, tc := range []struct {
		fam   LeaseFamily
		ip    string
		other string // an address of the other family
		want  string // hex of the store record without its CRC
	}{
		{IPv4Leases, "10.1.2.3", "fd00::1", "01" + "0a010203" + "525400aabbcc" + "00" + "0102030405060708"},
		{IPv6Leases, "fd00:79::1:2", "10.0.0.1", "03" + "fd000079000000000000000000010002" + "525400aabbcc" + "00" + "0102030405060708"},
	} {
		t.Run(tc.fam.name, func(t *testing.T) {
			rec := make([]byte, tc.fam.recordLen())
			tc.fam.encodeRecord(rec, tc.fam.storeKind, netip.MustParseAddr(tc.ip), mac, exp)
			if got := fmt.Sprintf("%x", rec[:len(rec)-4]); got != tc.want {
				t.Errorf("record %s, want %s", got, tc.want)
			}
			if len(rec) != 20+tc.fam.addrLen {
				t.Errorf("record of %d bytes", len(rec))
			}
			if !tc.fam.validRecord(rec) {
				t.Fatal("own record not valid")
			}
			l := tc.fam.decodeRecord(rec)
			if l.IP.String() != tc.ip || l.MAC.String() != mac.String() || !l.Expiry.Equal(exp) {
				t.Errorf("decoded %+v", l)
			}
			for _, other := range families {
				if other.addrLen != tc.fam.addrLen {
					padded := append(append([]byte(nil), rec...), make([]byte, 32)...)[:other.recordLen()]
					if other.validRecord(padded) {
						t.Errorf("a %s record is a valid %s record", tc.fam.name, other.name)
					}
				}
			}
			for i := range rec {
				bad := append([]byte(nil), rec...)
				bad[i] ^= 0x10
				if tc.fam.validRecord(bad) {
					t.Errorf("record with byte %d flipped is valid", i)
				}
			}
			l2 := openLog(t, filepath.Join(t.TempDir(), "leases.log"), LogOptions{Family: tc.fam})
			if err := l2.Store(context.Background(), Lease{IP: netip.MustParseAddr(tc.other), MAC: mac, Expiry: exp}); err == nil {
				t.Errorf("%s log stored a lease for %s", tc.fam.name, tc.other)
			}
		})
	}
}

// TestLogLeasesReplay: stores, replacements and removals come back after
// a reopen, also after the log was compacted several times, and with
// SyncOnStore.
func TestLogLeasesReplay(t *testing.T) {
	for _, fam := range families {
		for _, tc := range []struct {
			name string
			opts LogOptions
		}{
			{"default", LogOptions{}},
			{"compacting", LogOptions{CompactMin: 16}},
			{"sync on store", LogOptions{SyncOnStore: true, CompactMin: 16}},
		} {
			tc.opts.Family = fam
			testLogReplay(t, fam, tc.name, tc.opts)
		}
	}
}

func testLogReplay(t *testing.T, fam LeaseFamily, name string, opts LogOptions) {
	testLease := func(i int) Lease { return testLeaseOf(fam, i) }
	logRecordLen := fam.recordLen()
	t.Run(fam.name+"/"+name, func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "leases.log")
		l, err := OpenLogLeases(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := map[netip.Addr]string{}
		for round := range 5 {
			for i := range 40 {
				x := testLease(i)
				x.Expiry = x.Expiry.Add(time.Duration(round) * time.Hour)
				if err := l.Store(ctx, x); err != nil {
					t.Fatal(err)
				}
				want[x.IP] = x.MAC.String() + " " + x.Expiry.UTC().Format(time.RFC3339Nano)
			}
			for i := 0; i < 40; i += 3 {
				if err := l.Remove(ctx, testLease(i).IP); err != nil {
					t.Fatal(err)
				}
				delete(want, testLease(i).IP)
			}
		}
		if err := l.Remove(ctx, testLease(9999).IP); err != nil {
			t.Fatalf("Remove of a missing lease: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size()%int64(logRecordLen) != 0 {
			t.Errorf("log size %d is not a whole number of records", fi.Size())
		}
		if opts.CompactMin > 0 && fi.Size() > int64(logRecordLen*(3*len(want)+opts.CompactMin)) {
			t.Errorf("log of %d bytes for %d leases was not compacted", fi.Size(), len(want))
		}
		got := leaseMap(t, openLog(t, path, LogOptions{Family: fam}))
		if len(got) != len(want) {
			t.Fatalf("after reopen: %d leases, want %d", len(got), len(want))
		}
		for ip, w := range want {
			if got[ip] != w {
				t.Errorf("lease %v = %q, want %q", ip, got[ip], w)
			}
		}
	})
}

// TestLogLeasesDamaged: a torn last record is dropped quietly; a damaged
// record in the middle is skipped, counted, logged, and a copy of the file
// is kept; the other leases load and the log is usable again.
func TestLogLeasesDamaged(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) { testLogDamaged(t, fam) })
	}
}

func testLogDamaged(t *testing.T, fam LeaseFamily) {
	ctx := context.Background()
	testLease := func(i int) Lease { return testLeaseOf(fam, i) }
	logRecordLen := fam.recordLen()
	write := func(t *testing.T, n int) (string, []byte) {
		path := filepath.Join(t.TempDir(), "leases.log")
		l := openLog(t, path, LogOptions{Family: fam})
		for i := range n {
			if err := l.Store(ctx, testLease(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return path, data
	}
	for _, tc := range []struct {
		name        string
		damage      func([]byte) []byte
		wantLeases  int
		wantCorrupt int
		wantCopy    bool
		wantLog     string
	}{
		{"torn tail", func(b []byte) []byte { return append(b, b[:10]...) }, 10, 0, false, "torn record"},
		{"last record garbled", func(b []byte) []byte { b[len(b)-3] ^= 0xff; return b }, 9, 0, false, "torn record"},
		{"middle record garbled", func(b []byte) []byte { b[4*logRecordLen+7] ^= 0x01; return b }, 9, 1, true, "damaged"},
		{"zeros in the middle", func(b []byte) []byte { clear(b[2*logRecordLen : 5*logRecordLen]); return b }, 7, 3, true, "damaged"},
		{"not a lease log", func([]byte) []byte { return bytes.Repeat([]byte("garbage!"), 10*logRecordLen/8) }, 0, 9, true, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, data := write(t, 10)
			if err := os.WriteFile(path, tc.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			l := openLog(t, path, LogOptions{Family: fam, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
			if got := len(leaseMap(t, l)); got != tc.wantLeases {
				t.Errorf("loaded %d leases, want %d", got, tc.wantLeases)
			}
			if l.Corrupt() != tc.wantCorrupt {
				t.Errorf("Corrupt() = %d, want %d", l.Corrupt(), tc.wantCorrupt)
			}
			if !bytes.Contains(logBuf.Bytes(), []byte(tc.wantLog)) {
				t.Errorf("log output %q does not mention %q", logBuf.String(), tc.wantLog)
			}
			copies, _ := filepath.Glob(path + ".corrupt-*")
			if (len(copies) == 1) != tc.wantCopy {
				t.Errorf("copies of the damaged file: %v, want one: %v", copies, tc.wantCopy)
			}
			// Usable: a new lease is stored and everything reloads clean.
			if err := l.Store(ctx, testLease(100)); err != nil {
				t.Fatal(err)
			}
			l.Close()
			again := openLog(t, path, LogOptions{Family: fam})
			if got := len(leaseMap(t, again)); got != tc.wantLeases+1 || again.Corrupt() != 0 {
				t.Errorf("after repair: %d leases, %d damaged; want %d, 0", got, again.Corrupt(), tc.wantLeases+1)
			}
		})
	}
}

// TestLogLeasesDiskFull fills a small tmpfs: Store fails with ENOSPC, the
// log stays a whole number of records, a full-mode server answers such a
// REQUEST with nothing (no ACK without a stored lease) and counts an
// error, and once space is free again leases are stored and ACKed.
func TestLogLeasesDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "leases.log")
	l := openLog(t, path, LogOptions{})
	// Leave 4 KiB: a little more than 170 records.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 60<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var stored int
	var err error
	for stored = 0; stored < 10000; stored++ {
		if err = l.Store(ctx, testLease(stored)); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Store on a full disk after %d leases: %v, want ENOSPC", stored, err)
	}
	fi, serr := os.Stat(path)
	if serr != nil || fi.Size()%int64(logRecordLen) != 0 || fi.Size()/logRecordLen != int64(stored) {
		t.Fatalf("log after ENOSPC: %v, %v; want %d whole records", fi.Size(), serr, stored)
	}

	// The server over the full log.
	h := hosts(mac(1))
	s := fullServer(t, h, l, nil)
	offer, _ := s.handle(ctx, discover(t, mac(1)), 67, nil)
	if offer == nil {
		t.Fatal("no OFFER on a full disk (offers store nothing)")
	}
	ip := offer.YourIPAddr.String()
	if reply, _ := s.handle(ctx, request(t, mac(1), ip), 67, nil); reply != nil {
		t.Fatalf("REQUEST with a full lease log answered %v, want no answer", reply.MessageType())
	}
	if st := s.Stats(); st.Errors != 1 || st.Acks != 0 {
		t.Errorf("Stats() = %+v, want 1 error and no ACK", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ack, _ := s.handle(ctx, request(t, mac(1), ip), 67, nil)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("REQUEST after space was freed: %v, want ACK", ack)
	}
	l.Close()
	got := leaseMap(t, openLog(t, path, LogOptions{}))
	if len(got) != stored+1 {
		t.Errorf("after reopen: %d leases, want %d", len(got), stored+1)
	}
}

// TestLogLeasesConcurrent: stores from many goroutines, with compactions
// and syncs running between them, all come back after a reopen.
func TestLogLeasesConcurrent(t *testing.T) {
	for _, onStore := range []bool{false, true} {
		t.Run(fmt.Sprintf("SyncOnStore=%v", onStore), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "leases.log")
			l := openLog(t, path, LogOptions{SyncOnStore: onStore, CompactMin: 64, SyncInterval: time.Millisecond})
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 150 {
						x := testLease(g*1000 + i)
						for range 3 { // each lease stored three times: the log outgrows the live set
							if err := l.Store(context.Background(), x); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(leaseMap(t, openLog(t, path, LogOptions{}))); got != 8*150 {
				t.Errorf("after reopen: %d leases, want %d", got, 8*150)
			}
		})
	}
}

// FuzzLogReplay opens a lease log of arbitrary bytes as each family: it
// never fails or panics, loads only leases of its family, and leaves a
// file of whole, valid records that reopens to the same leases with
// nothing damaged.
//
//	TMPDIR=/dev/shm go test -run '^$' -fuzz FuzzLogReplay -fuzztime 30s ./pxe/dhcp/
//
// (on tmpfs: on a disk, each input waits for several fdatasyncs)
func FuzzLogReplay(f *testing.F) {
	ctx := context.Background()
	for _, fam := range families {
		var seed []byte
		for i := range 3 {
			rec := make([]byte, fam.recordLen())
			l := testLeaseOf(fam, i)
			fam.encodeRecord(rec, fam.storeKind, l.IP, l.MAC, l.Expiry)
			seed = append(seed, rec...)
		}
		rec := make([]byte, fam.recordLen())
		fam.encodeRecord(rec, fam.removeKind, testLeaseOf(fam, 1).IP, make(net.HardwareAddr, 6), time.Unix(0, 0))
		f.Add(append(append([]byte(nil), seed...), rec...))
		f.Add(append(append([]byte(nil), seed...), rec[:7]...)) // torn tail
		f.Add(append(append([]byte(nil), rec...), seed[3:]...)) // damaged head
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fam := range families {
			path := filepath.Join(t.TempDir(), "leases.log")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := OpenLogLeases(path, LogOptions{Family: fam, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("%s: open: %v", fam.name, err)
			}
			first, err := l.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range first {
				if !fam.holds(x.IP) || len(x.MAC) != 6 {
					t.Fatalf("%s log loaded %v %v", fam.name, x.IP, x.MAC)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)%fam.recordLen() != 0 {
				t.Fatalf("%s: %d bytes after the replay, not whole records", fam.name, len(b))
			}
			again, err := OpenLogLeases(path, LogOptions{Family: fam, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			second, _ := again.Load(ctx)
			if again.Corrupt() != 0 || len(second) != len(first) {
				t.Fatalf("%s: reopened with %d damaged, %d leases; want 0, %d", fam.name, again.Corrupt(), len(second), len(first))
			}
			again.Close()
		}
	})
}
