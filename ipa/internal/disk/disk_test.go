package disk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sparseDisk makes a sparse file of size bytes, optionally partitioned by
// sfdisk with script, and opens it.
func sparseDisk(t *testing.T, size int64, script string) *File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	if script != "" {
		sfdiskRun(t, p, script)
	}
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func sfdiskRun(t *testing.T, path, script string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk (util-linux) not installed")
	}
	cmd := exec.Command("sfdisk", append(args, path)...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk %v: %v\n%s", args, err, out)
	}
	return string(out)
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestAddPartitionAtEnd(t *testing.T) {
	tests := []struct {
		name   string
		script string
		label  string
	}{
		{"gpt image on a larger disk", "label: gpt\nstart=2048, size=20480\n", "gpt"},
		{"mbr", "label: dos\nlabel-id: 0x12345678\nstart=2048, size=20480, type=83\n", "dos"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Partition a 16 MiB "image", then grow it into a 256 MiB "disk".
			d := sparseDisk(t, 16*MiB, tc.script)
			if err := d.Truncate(256 * MiB); err != nil {
				t.Fatal(err)
			}
			if err := FixGPTBackup(d); err != nil {
				t.Fatal(err)
			}
			p, err := AddPartitionAtEnd(d, 64*MiB, "config-2")
			if err != nil {
				t.Fatalf("AddPartitionAtEnd: %v", err)
			}
			if p.Number != 2 || p.Size < 63*MiB || p.Start+p.Size > 256*MiB || p.Start%MiB != 0 {
				t.Errorf("AddPartitionAtEnd = %+v", p)
			}
			out := sfdiskRun(t, d.Name(), "", "--json")
			var sj sfdiskJSON
			if err := json.Unmarshal([]byte(out), &sj); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			pt := sj.PartitionTable
			if pt.Label != tc.label || len(pt.Partitions) != 2 {
				t.Fatalf("sfdisk sees %+v", pt)
			}
			if got := pt.Partitions[1]; got.Start*512 != p.Start || got.Size*512 != p.Size {
				t.Errorf("sfdisk partition 2 = %+v, we wrote %+v", got, p)
			}
			if tc.label == "gpt" && !strings.EqualFold(pt.Partitions[1].UUID, p.UUID) {
				t.Errorf("sfdisk uuid %s, ours %s", pt.Partitions[1].UUID, p.UUID)
			}
			sfdiskRun(t, d.Name(), "", "--verify")
			tbl, err := ReadTable(d)
			if err != nil || len(tbl.Partitions) != 2 || tbl.Partitions[1].UUID != p.UUID {
				t.Errorf("ReadTable = %+v, %v", tbl, err)
			}
			if tc.label == "dos" && (tbl.DiskID != "0x12345678" || p.UUID != "12345678-02") {
				t.Errorf("MBR ids: disk %s part %s", tbl.DiskID, p.UUID)
			}
		})
	}
}

func TestAddPartitionNoRoom(t *testing.T) {
	d := sparseDisk(t, 64*MiB, "label: dos\nstart=2048, type=83\n")
	if _, err := AddPartitionAtEnd(d, 64*MiB, ""); err == nil {
		t.Fatal("AddPartitionAtEnd on a full disk succeeded")
	}
	d2 := sparseDisk(t, 64*MiB, "")
	if _, err := AddPartitionAtEnd(d2, 8*MiB, ""); err == nil {
		t.Fatal("AddPartitionAtEnd on an unpartitioned disk succeeded")
	}
}

func TestEraseMetadataAndWipe(t *testing.T) {
	d := sparseDisk(t, 32*MiB, "label: gpt\nstart=2048, size=8192\n")
	if _, err := d.WriteAt(bytes.Repeat([]byte{0xAB}, 4096), 2048*512); err != nil {
		t.Fatal(err)
	}
	if err := EraseMetadata(d); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTable(d); err == nil {
		t.Error("ReadTable after EraseMetadata found a table")
	}
	buf := make([]byte, 4096)
	d.ReadAt(buf, 2048*512)
	if !IsZero(buf) {
		t.Error("partition start not wiped")
	}
	d.ReadAt(buf, 32*MiB-4096)
	if !IsZero(buf) {
		t.Error("disk end not wiped")
	}
}

func TestEraseFile(t *testing.T) {
	d := sparseDisk(t, 8*MiB, "")
	d.WriteAt(bytes.Repeat([]byte{1}, 3*MiB), 1*MiB)
	var last int64
	method, err := Erase(context.Background(), d, func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	if last != 8*MiB || method == "" {
		t.Errorf("Erase = %q, progress %d", method, last)
	}
	buf := make([]byte, 8*MiB)
	d.ReadAt(buf, 0)
	if !IsZero(buf) {
		t.Error("disk not erased")
	}
	if d.HasData(0) {
		t.Error("HasData after discard of a file = true")
	}
}

func TestZeroRangeAndHasData(t *testing.T) {
	d := sparseDisk(t, 4*MiB, "")
	if d.HasData(0) {
		t.Error("fresh sparse file HasData = true")
	}
	d.WriteAt(bytes.Repeat([]byte{7}, 2*MiB), MiB)
	if !d.HasData(0) {
		t.Error("written file HasData = false")
	}
	if err := d.ZeroRange(MiB, 2*MiB); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4*MiB)
	d.ReadAt(buf, 0)
	if !IsZero(buf) {
		t.Error("ZeroRange left data")
	}
	// Growing a file through ZeroRange keeps it readable as zeroes.
	if err := d.ZeroRange(4*MiB, MiB); err != nil || d.Size() != 5*MiB {
		t.Errorf("ZeroRange past end: size %d, %v", d.Size(), err)
	}
}

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 31, 32, 33, 4096, 4099} {
		b := make([]byte, n+1)[1:] // misaligned start
		if !IsZero(b) {
			t.Errorf("IsZero(zero %d) = false", n)
		}
		for i := 0; i < n; i++ {
			b[i] = 1
			if IsZero(b) {
				t.Errorf("IsZero(%d bytes, 1 at %d) = true", n, i)
			}
			b[i] = 0
		}
	}
}

func TestProbeISOLabel(t *testing.T) {
	if _, err := exec.LookPath("genisoimage"); err != nil {
		t.Skip("genisoimage not installed")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644)
	iso := filepath.Join(t.TempDir(), "cd.iso")
	if out, err := exec.Command("genisoimage", "-quiet", "-V", "config-2", "-o", iso, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	d, err := Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := ProbeISOLabel(d, 0); got != "config-2" {
		t.Errorf("ProbeISOLabel = %q", got)
	}
}

// noDiscard is a disk that refuses discards (as many block devices do).
type noDiscard struct{ *File }

func (noDiscard) Discard(int64, int64, bool) error { return errors.New("discard not supported") }

func TestEraseExpress(t *testing.T) {
	// A disk that discards: all of it.
	d := sparseDisk(t, 8*MiB, "")
	d.WriteAt(bytes.Repeat([]byte{1}, 3*MiB), 1*MiB)
	if method, err := EraseExpress(d); err != nil || method != "discard" {
		t.Fatalf("EraseExpress = %q, %v; want discard", method, err)
	}
	buf := make([]byte, 8*MiB)
	d.ReadAt(buf, 0)
	if !IsZero(buf) {
		t.Error("disk not discarded")
	}
	// One that does not: only its metadata, the data stays (no zeroing pass).
	d2 := sparseDisk(t, 32*MiB, "label: gpt\nstart=2048, size=8192\n")
	d2.WriteAt(bytes.Repeat([]byte{0xAB}, MiB), 16*MiB)
	if method, err := EraseExpress(noDiscard{d2}); err != nil || method != "metadata" {
		t.Fatalf("EraseExpress without discard = %q, %v; want metadata", method, err)
	}
	if _, err := ReadTable(d2); err == nil {
		t.Error("partition table survived EraseExpress")
	}
	b := make([]byte, 4096)
	d2.ReadAt(b, 16*MiB)
	if b[0] != 0xAB {
		t.Error("EraseExpress zeroed data on a disk without discard")
	}
}
