package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/artifacts"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed", tool)
		}
	}
}

// TestTestOSImage builds the test OS image and a config drive, boots them in
// QEMU and waits for the OS to report its uuid and hostname over HTTP.
func TestTestOSImage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds a disk image and boots QEMU (~30 s)")
	}
	needTools(t, "qemu-system-x86_64", "qemu-img", "sfdisk", "mkfs.vfat", "syslinux", "mcopy", "apt-get", "dpkg-deb", "depmod", "cpio", "go")
	dir := t.TempDir()
	img, cd := filepath.Join(dir, "testos.qcow2"), filepath.Join(dir, "config-2.img")
	// mkimage.sh's image, built once per run (test/artifacts); the machine
	// writes to an overlay.
	raw, err := artifacts.TestOS(64)
	if err != nil {
		if strings.Contains(err.Error(), "apt-get download") || strings.Contains(err.Error(), "cannot resolve") {
			t.Skipf("skipping: kernel package not available: %v", err)
		}
		t.Fatal(err)
	}
	if err := artifacts.Overlay(raw, "raw", img); err != nil {
		t.Fatal(err)
	}

	got := make(chan map[string]string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		select {
		case got <- m:
		default:
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	// QEMU user-mode networking shows the host's 127.0.0.1 as 10.0.2.2.
	url := fmt.Sprintf("http://10.0.2.2:%d/report", port)
	if out, err := exec.Command("./mkconfigdrive.sh", cd, "8d3b2c1a-0000-4000-8000-00000000cafe", "testos-1", url).CombinedOutput(); err != nil {
		t.Fatalf("mkconfigdrive.sh: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	serial := filepath.Join(dir, "serial.log")
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "1", "-m", "256",
		"-display", "none", "-no-reboot", "-monitor", "none", "-serial", "file:"+serial,
		"-drive", "file="+img+",format=qcow2,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,bootindex=1",
		"-drive", "file="+cd+",format=raw,if=none,id=d1", "-device", "virtio-blk-pci,drive=d1",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	if err := qemu.Run(); err != nil {
		log, _ := os.ReadFile(serial)
		t.Fatalf("qemu: %v\nserial:\n%s", err, log)
	}
	select {
	case m := <-got:
		if m["uuid"] != "8d3b2c1a-0000-4000-8000-00000000cafe" || m["hostname"] != "testos-1" {
			t.Errorf("report = %v, want uuid 8d3b2c1a-0000-4000-8000-00000000cafe hostname testos-1", m)
		}
	default:
		log, _ := os.ReadFile(serial)
		t.Fatalf("the test OS powered off without reporting; serial:\n%s", log)
	}
}
