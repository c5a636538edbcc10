package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// log.collect_system_logs returns a gzip'd tar of the agent's log, the
// kernel command line and mounts, the network state, the block devices
// (from the /sys and /proc under ProcRoot), the inventory and the
// commands run.
func TestCollectSystemLogs(t *testing.T) {
	root := t.TempDir()
	for f, body := range map[string]string{
		"proc/cmdline":             "ipa-api-url=http://10.0.0.1:6385\n",
		"proc/mounts":              "proc /proc proc rw 0 0\n",
		"proc/net/route":           "Iface\tDestination\n",
		"sys/block/vda/size":       "2048\n",
		"sys/block/vda/vda1/size":  "1024\n",
		"sys/block/vda/removable":  "0\n",
		"sys/block/vda/ro":         "0\n",
		"sys/block/vda/device/x":   "",
		"etc/resolv.conf":          "nameserver 10.0.0.1\n",
		"sys/block/vda/queue/x":    "",
		"sys/class/net/lo/address": "00:00:00:00:00:00\n",
	} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	ring := NewLogRing(1 << 10)
	ring.Write([]byte("level=WARN msg=\"command finished\" error=\"checksum mismatch\"\n"))
	a, err := New(Config{APIURLs: []string{"http://127.0.0.1:1"}, MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1",
		Inventory: fakeInventory, Power: nopPower{}, ProcRoot: root, LogBuffer: ring})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.cmdCollectLogs(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(res.(protocol.SystemLogsResult).SystemLogs)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	for name, want := range map[string]string{
		"ferric-agent.log":  "checksum mismatch",
		"proc/cmdline":      "ipa-api-url",
		"proc/net/route":    "Iface",
		"etc/resolv.conf":   "nameserver 10.0.0.1",
		"block-devices.txt": "vda size 1048576",
		"network.txt":       "lo mtu",
		"inventory.json":    "{",
		"commands.json":     "[",
	} {
		if !bytes.Contains([]byte(files[name]), []byte(want)) {
			t.Errorf("%s = %q, want it to hold %q", name, files[name], want)
		}
	}
	if !bytes.Contains([]byte(files["block-devices.txt"]), []byte("vda1 size 524288")) {
		t.Errorf("block-devices.txt = %q, want the partition vda1", files["block-devices.txt"])
	}
}
