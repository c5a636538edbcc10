package vmedia

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// nopMachine is a machine that is always off and boots nothing: the
// emulator's recorded boot override is what the tests read.
type nopMachine struct{}

func (nopMachine) Running(context.Context) (bool, error)       { return false, nil }
func (nopMachine) PowerOn(context.Context) error               { return nil }
func (nopMachine) PowerOff(context.Context) error              { return nil }
func (nopMachine) Shutdown(context.Context) error              { return nil }
func (nopMachine) Reset(context.Context) error                 { return nil }
func (nopMachine) InjectNMI(context.Context) error             { return nil }
func (nopMachine) SetBootDevice(context.Context, string) error { return nil }

// TestHTTPSBoot drives the redfish-https boot against the Redfish
// emulator, whose recorded boot override is checked (its machine does not
// boot over HTTP): the ramdisk ISO is published and the BMC told to boot
// its URL once over UEFI HTTP; a ramdisk deploy's boot_iso persistently,
// downloaded and served by the conductor (local) or given as is (http);
// clean-ups withdraw the names. A BMC without the UefiHttp target gets
// Ironic's UnsupportedHardwareFeature message and nothing stays published.
func TestHTTPSBoot(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "kernel"), filepath.Join(dir, "initrd")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, []byte("not really "+filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"vm0": nopMachine{}}, Logger: quiet()})
	rf := httptest.NewServer(emu)
	defer rf.Close()
	// The same BMC, but its system lists no UefiHttp boot target.
	noHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte(`,"UefiHttp"`), nil))
	}))
	defer noHTTP.Close()
	isoBytes := []byte("a live ISO's bytes")
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "live.iso", time.Time{}, bytes.NewReader(isoBytes))
	}))
	defer src.Close()

	b, err := New(Config{Dir: filepath.Join(dir, "iso"), Log: quiet(),
		Ramdisk: func(*driver.Node, bool) (Ramdisk, error) {
			return Ramdisk{Kernel: kernel, Initrd: initrd, Params: "ipa-api-url=http://192.0.2.1:6385"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.StripPrefix("/boot/vmedia", b)}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/boot/vmedia/"
	b.SetBaseURL(base)
	h := NewHTTPS(b)
	h.SetBooter(bmc.NewRedfish(bmc.Config{Logger: quiet()}))

	node := func(url string, ii map[string]any) *driver.Node {
		return &driver.Node{UUID: "8c1c2e2a-0000-4000-8000-000000000002", Properties: map[string]any{"capabilities": "boot_mode:uefi"},
			DriverInfo: map[string]any{bmc.KeyRedfishAddress: url, bmc.KeyRedfishUsername: "admin", bmc.KeyRedfishPassword: "pw",
				"deploy_kernel": kernel, "deploy_ramdisk": initrd}, InstanceInfo: ii}
	}
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	override := func() redfish.Boot {
		o, _ := emu.BootOverride("vm0")
		return o
	}

	n := node(rf.URL, nil)
	dev, err := h.PrepareRamdisk(ctx, n, false)
	if err != nil || dev != "" {
		t.Fatalf("PrepareRamdisk = %q, %v; want \"\" (the boot is set)", dev, err)
	}
	o := override()
	if o.BootSourceOverrideTarget != "UefiHttp" || o.BootSourceOverrideEnabled != "Once" || o.BootSourceOverrideMode != "UEFI" || !strings.HasPrefix(o.HttpBootUri, base) {
		t.Fatalf("boot override after PrepareRamdisk = %+v, want UefiHttp Once UEFI at %s...", o, base)
	}
	ramdiskURL := o.HttpBootUri
	if code, body := get(ramdiskURL); code != 200 || len(body) < 32<<10 {
		t.Errorf("GET the HTTP boot ISO = %d (%d bytes)", code, len(body))
	}
	if err := h.CleanUpRamdisk(ctx, n); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(ramdiskURL); code != 404 {
		t.Errorf("GET the ISO after CleanUpRamdisk = %d, want 404", code)
	}

	for _, tc := range []struct{ source, wantPrefix string }{{"local", base}, {"http", src.URL}} {
		n := node(rf.URL, map[string]any{"boot_iso": src.URL + "/live.iso", "ramdisk_image_download_source": tc.source})
		if dev, err := h.PrepareInstance(ctx, n); err != nil || dev != "" {
			t.Fatalf("%s: PrepareInstance = %q, %v", tc.source, dev, err)
		}
		o := override()
		if o.BootSourceOverrideTarget != "UefiHttp" || o.BootSourceOverrideEnabled != "Continuous" || !strings.HasPrefix(o.HttpBootUri, tc.wantPrefix) {
			t.Errorf("%s: boot override %+v, want UefiHttp Continuous at %s...", tc.source, o, tc.wantPrefix)
		}
		if code, body := get(o.HttpBootUri); code != 200 || !bytes.Equal(body, isoBytes) {
			t.Errorf("%s: GET %s = %d %q", tc.source, o.HttpBootUri, code, body)
		}
		if err := h.CleanUpInstance(ctx, n); err != nil {
			t.Fatal(err)
		}
		if tc.source == "local" {
			if code, _ := get(o.HttpBootUri); code != 404 {
				t.Errorf("GET the instance ISO after CleanUpInstance = %d, want 404", code)
			}
		}
	}

	// A kernel and ramdisk: downloaded, built into an ISO with the
	// instance's parameters, once for the same inputs.
	kr := node(rf.URL, map[string]any{"kernel": src.URL + "/vmlinuz", "ramdisk": src.URL + "/initrd", "kernel_append_params": "console=ttyS0 live=1"})
	builds := b.Builds()
	for range 2 {
		if _, err := h.PrepareInstance(ctx, kr); err != nil {
			t.Fatalf("PrepareInstance with a kernel and ramdisk: %v", err)
		}
	}
	if got := b.Builds() - builds; got != 1 {
		t.Errorf("%d ISO builds for the same kernel and ramdisk, want 1", got)
	}
	if code, body := get(override().HttpBootUri); code != 200 || !bytes.Contains(body, []byte("console=ttyS0 live=1")) {
		t.Errorf("GET the instance ISO built from the kernel and ramdisk = %d (%d bytes, parameters on it: %v)", code, len(body), bytes.Contains(body, []byte("live=1")))
	}
	if err := h.CleanUpInstance(ctx, kr); err != nil {
		t.Fatal(err)
	}

	// Faults: nothing stays published.
	_, err = h.PrepareRamdisk(ctx, node(noHTTP.URL, nil), false)
	if err == nil || !strings.Contains(err.Error(), "hardware does not support feature UefiHttp boot, which is required.") {
		t.Errorf("PrepareRamdisk on a BMC without UefiHttp = %v", err)
	}
	_, err = h.PrepareInstance(ctx, node(rf.URL, map[string]any{"kernel": src.URL + "/k"}))
	if err == nil || !strings.Contains(err.Error(), "Missing are: ['ramdisk']") {
		t.Errorf("PrepareInstance without a ramdisk = %v", err)
	}
	b.mu.Lock()
	left := len(b.byName)
	b.mu.Unlock()
	if left != 0 {
		t.Errorf("%d names still published after the faults", left)
	}
}
