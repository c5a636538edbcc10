package ramdisklogs

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	nodeA = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	nodeB = "2be26c0b-03f2-4d2e-ae87-c02d7f33c123"
)

func archive(t *testing.T, size int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.NoCompression)
	zw.Write(bytes.Repeat([]byte("x"), size))
	zw.Close()
	return b.Bytes()
}

// Save names archives as Ironic does (uuid_name_instance_label_time),
// with unsafe characters replaced; it refuses what is not gzip, too big
// or not a node's UUID.
func TestSaveNames(t *testing.T) {
	now := time.Date(2026, 12, 6, 4, 5, 6, 0, time.UTC)
	s := &Store{Dir: t.TempDir(), now: func() time.Time { return now }}
	for _, c := range []struct {
		meta Meta
		want string
	}{
		{Meta{NodeUUID: nodeA, NodeName: "vm0", InstanceUUID: "inst-1", Label: "deploy"}, nodeA + "_vm0_inst-1_deploy_2026-12-06-04-05-06.tar.gz"},
		{Meta{NodeUUID: nodeA, Label: "cleaning"}, nodeA + "_cleaning_2026-12-06-04-05-06.tar.gz"},
		{Meta{NodeUUID: nodeA, Label: "cleaning"}, nodeA + "_cleaning_2026-12-06-04-05-06-1.tar.gz"},
		{Meta{NodeUUID: nodeA, NodeName: "../a_b c", Label: "rescue"}, nodeA + "_..-a-b-c_rescue_2026-12-06-04-05-06.tar.gz"},
		{Meta{NodeUUID: nodeA, NodeName: strings.Repeat("n", 255), InstanceUUID: strings.Repeat("i", 255), Label: "deploy"},
			nodeA + "_" + strings.Repeat("n", maxField) + "_" + strings.Repeat("i", maxField) + "_deploy_2026-12-06-04-05-06.tar.gz"},
	} {
		e, err := s.Save(c.meta, archive(t, 10))
		if err != nil || e.Name != c.want {
			t.Errorf("Save(%+v) = %q, %v, want %q", c.meta, e.Name, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		meta Meta
		data []byte
	}{
		{"not gzip", Meta{NodeUUID: nodeA}, []byte("plain text")},
		{"not a uuid", Meta{NodeUUID: "../../etc"}, archive(t, 1)},
		{"too big", Meta{NodeUUID: nodeA}, archive(t, DefaultMaxArchive+1)},
	} {
		if _, err := s.Save(c.meta, c.data); err == nil {
			t.Errorf("Save %s: no error", c.name)
		}
	}
}

// List gives one node's archives oldest first; the store keeps within
// its total size (oldest removed first, never the one just saved) and
// age; Open serves only names List gives.
func TestBounds(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := &Store{Dir: dir, MaxBytes: 2500, MaxAge: 48 * time.Hour, now: func() time.Time { return now }}
	var names []string
	for i := range 3 {
		now = now.Add(time.Hour)
		e, err := s.Save(Meta{NodeUUID: []string{nodeA, nodeB}[i%2], Label: "deploy"}, archive(t, 1000))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name)
	}
	// 3 archives of ~1030 bytes over 2500: the oldest went.
	if _, err := os.Stat(filepath.Join(dir, names[0])); !os.IsNotExist(err) {
		t.Errorf("the oldest archive is still there over the size limit (%v)", err)
	}
	a, _ := s.List(nodeA)
	b, _ := s.List(nodeB)
	if len(a) != 1 || a[0].Name != names[2] || len(b) != 1 || b[0].Name != names[1] {
		t.Errorf("List = %v / %v, want %s / %s", a, b, names[2], names[1])
	}
	if _, _, err := s.Open(nodeA, names[1]); err != ErrNotFound {
		t.Errorf("Open of another node's archive: %v, want ErrNotFound", err)
	}
	if f, e, err := s.Open(nodeA, names[2]); err != nil || e.Size == 0 {
		t.Errorf("Open = %v, %v", e, err)
	} else {
		f.Close()
	}
	// Two days later everything is past the age limit.
	now = now.Add(49 * time.Hour)
	if a, _ := s.List(nodeA); len(a) != 0 {
		t.Errorf("List after the age limit = %v, want none", a)
	}
	left, _ := os.ReadDir(dir)
	for _, l := range left {
		if strings.HasSuffix(l.Name(), suffix) {
			t.Errorf("%s left after the age limit", l.Name())
		}
	}
}
