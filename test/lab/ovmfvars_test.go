package lab

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// liveVars lists the live (added, not deleted) variables of store b, by
// name.
func liveVars(t *testing.T, b []byte) map[string][][]byte {
	t.Helper()
	store := int(binary.LittleEndian.Uint16(b[48:]))
	out := map[string][][]byte{}
	for off := store + 28; binary.LittleEndian.Uint16(b[off:]) == varStartID; {
		ns, ds := int(binary.LittleEndian.Uint32(b[off+36:])), int(binary.LittleEndian.Uint32(b[off+40:]))
		raw := b[off+varHeaderSize : off+varHeaderSize+ns]
		u := make([]uint16, ns/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		name := strings.TrimRight(string(utf16.Decode(u)), "\x00")
		if b[off+2] == varAdded {
			out[name] = append(out[name], b[off+varHeaderSize+ns:off+varHeaderSize+ns+ds])
		}
		off = align4(off + varHeaderSize + ns + ds)
	}
	return out
}

func TestSetOVMFHTTPBoot(t *testing.T) {
	orig, err := os.ReadFile(OVMFVars)
	if err != nil {
		t.Skipf("skipping: %v (package ovmf)", err)
	}
	vars := filepath.Join(t.TempDir(), "vm0.vars")
	if err := os.WriteFile(vars, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"http://10.0.2.2:6385/boot/vmedia/a.iso", "http://10.0.2.2:6385/boot/vmedia/second.iso"} {
		if err := SetOVMFHTTPBoot(vars, uri); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(vars)
		if len(b) != len(orig) || !bytes.Equal(b[:0x48], orig[:0x48]) {
			t.Fatalf("the volume changed size or header")
		}
		v := liveVars(t, b)
		if len(v["Boot0080"]) != 1 || len(v["BootNext"]) != 1 {
			t.Fatalf("live Boot0080 %d, BootNext %d; want one each", len(v["Boot0080"]), len(v["BootNext"]))
		}
		if next := v["BootNext"][0]; !bytes.Equal(next, []byte{0x80, 0}) {
			t.Errorf("BootNext = %x, want 8000", next)
		}
		opt := v["Boot0080"][0]
		dpLen := int(binary.LittleEndian.Uint16(opt[4:]))
		dp := opt[len(opt)-dpLen:]
		if binary.LittleEndian.Uint32(opt) != 1 || dp[0] != 3 || dp[1] != 24 ||
			string(dp[4:len(dp)-4]) != uri || !bytes.Equal(dp[len(dp)-4:], []byte{0x7f, 0xff, 4, 0}) {
			t.Errorf("Boot0080 = %x, want an active option with the URI device path of %s", opt, uri)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
		uri  string
		want string
	}{
		{"not a volume", make([]byte, 4096), "http://x/", "no _FVH"},
		{"no uri", orig, "", "want a URI"},
		{"full", func() []byte {
			b := bytes.Clone(orig)
			store := int(binary.LittleEndian.Uint16(b[48:]))
			binary.LittleEndian.PutUint32(b[store+16:], 28+40) // room for nothing
			return b
		}(), "http://x/", "no free space"},
	} {
		if _, err := setHTTPBootVars(tc.b, tc.uri); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
