package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestVirtualMediaAPI attaches, reads and detaches virtual media through
// the API (gophercloud's calls, 1.89 and 1.93) on a redfish node whose BMC
// is the Redfish emulator with a lab machine's CD drive: the image given to
// the BMC as is (image_download_source http), or downloaded and served by
// the conductor (local, the default); then Ironic's refusals and the BMC's
// faults in last_error.
func TestVirtualMediaAPI(t *testing.T) {
	ctx := context.Background()
	iso := []byte("ISO-9660-IMAGE-BYTES")
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/boot.iso" {
			http.NotFound(w, r)
			return
		}
		w.Write(iso)
	}))
	defer images.Close()
	dir := t.TempDir()
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "m1", Dir: dir, CDROM: true})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: dir,
		Machines: map[string]redfish.Machine{"m1": q}, Logger: quiet})
	bmcSrv := httptest.NewServer(emu)
	defer bmcSrv.Close()
	bare := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "pw",
		Machines: map[string]redfish.Machine{"m1": &machine{}}, Logger: quiet}))
	defer bare.Close()

	base := startConductor(t)
	c := client{t, base}
	for name, url := range map[string]string{"rf": bmcSrv.URL, "bare": bare.URL} {
		c.doVersion("1.89", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": name, "boot_interface": "redfish-virtual-media",
			"driver_info": map[string]any{"redfish_address": url, "redfish_username": "admin", "redfish_password": "pw",
				"redfish_system_id": "/redfish/v1/Systems/m1", "deploy_kernel": "k", "deploy_ramdisk": "r"}}, 201)
	}
	c.doVersion("1.89", "POST", "/v1/nodes", map[string]any{"driver": "ipmi", "name": "ipmi",
		"driver_info": map[string]any{"ipmi_address": "127.0.0.1"}}, 201)

	gc, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: base + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	gc.Microversion = "1.93"
	idle := func(node string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := c.doVersion("1.93", "GET", "/v1/nodes/"+node, nil, 200)
			if n["reservation"] == nil {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s still locked", node)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	inDrive := func() string {
		if q.Media() == "" {
			return ""
		}
		b, _ := os.ReadFile(q.Media())
		return string(b)
	}
	get := func(node string) []map[string]any {
		t.Helper()
		r := nodes.GetVirtualMedia(ctx, gc, node)
		if r.Err != nil {
			t.Fatalf("GetVirtualMedia(%s): %v", node, r.Err)
		}
		var out []map[string]any
		if err := r.ExtractInto(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// http: the BMC fetches the URL given.
	url := images.URL + "/boot.iso"
	if err := nodes.AttachVirtualMedia(ctx, gc, "rf", nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD, ImageURL: url,
		ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n := idle("rf"); n["last_error"] != nil {
		t.Fatalf("attach: last_error %v", n["last_error"])
	}
	if img, in := emu.Media("m1"); img != url || !in || inDrive() != string(iso) {
		t.Errorf("after attach (http): BMC image %q inserted %v, drive %q", img, in, inDrive())
	}
	if m := get("rf"); len(m) != 1 || m[0]["image"] != url || m[0]["inserted"] != true || fmt.Sprint(m[0]["media_types"]) != "[CD DVD]" {
		t.Errorf("GET vmedia = %v", m)
	}
	if err := nodes.DetachVirtualMedia(ctx, gc, "rf", nodes.DetachVirtualMediaOpts{DeviceTypes: []nodes.VirtualMediaDeviceType{nodes.VirtualMediaCD}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	idle("rf")
	if img, _ := emu.Media("m1"); img != "" || inDrive() != "" {
		t.Errorf("after detach: BMC image %q, drive %q", img, inDrive())
	}
	if m := get("rf"); len(m) != 1 || m[0]["image"] != nil || m[0]["inserted"] != false {
		t.Errorf("GET vmedia after detach = %v", m)
	}

	// local (the default): the conductor downloads the image and serves it.
	if err := nodes.AttachVirtualMedia(ctx, gc, "rf", nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD, ImageURL: url}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n := idle("rf"); n["last_error"] != nil {
		t.Fatalf("attach (local): last_error %v", n["last_error"])
	}
	served, in := emu.Media("m1")
	if !strings.HasPrefix(served, base+"/boot/vmedia/") || !in || inDrive() != string(iso) {
		t.Errorf("after attach (local): BMC image %q inserted %v, drive %q; want the conductor's copy", served, in, inDrive())
	}
	if err := nodes.DetachVirtualMedia(ctx, gc, "rf", nodes.DetachVirtualMediaOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	idle("rf")
	if img, _ := emu.Media("m1"); img != "" {
		t.Errorf("after detach all: BMC image %q", img)
	}
	if resp, err := http.Get(served); err != nil || resp.StatusCode != 404 {
		t.Errorf("the conductor still serves %s after the detach: %v %v", served, resp, err)
	} else {
		resp.Body.Close()
	}

	// Refused by the API, as Ironic refuses them.
	refusals := []struct {
		name, ver, method, path string
		body                    any
		want                    int
		msg                     string
	}{
		{"before 1.89", "1.88", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom", "image_url": url}, 404, ""},
		{"GET before 1.93", "1.92", "GET", "/v1/nodes/rf/vmedia", nil, 404, ""},
		{"upper-case device type", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "CDROM", "image_url": url}, 400,
			`Schema error for vmedia: 'CDROM' is not one of ['disk', 'cdrom', 'floppy']`},
		{"no image_url", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom"}, 400, `'image_url' is a required property`},
		{"unknown property", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom", "image_url": url, "insecure": true}, 400,
			`Additional properties are not allowed ('insecure' was unexpected)`},
		{"ftp", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom", "image_url": "ftp://x/boot.iso"}, 400,
			"Unsupported or missing URL scheme: ftp"},
		{"bad download source", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom", "image_url": url, "image_download_source": "nfs"}, 400,
			`'nfs' is not one of ['http', 'local', 'swift']`},
		{"local nfs", "1.89", "POST", "/v1/nodes/rf/vmedia", map[string]any{"device_type": "cdrom", "image_url": "nfs://x/boot.iso"}, 400,
			"image_download_source local needs an http or https image_url"},
		{"bad detach type", "1.89", "DELETE", "/v1/nodes/rf/vmedia?device_types=cdrom,tape", nil, 400,
			"Invalid device type(s) tape (valid are disk, cdrom, floppy)"},
		{"ipmi", "1.89", "POST", "/v1/nodes/ipmi/vmedia", map[string]any{"device_type": "cdrom", "image_url": url}, 400,
			"Driver ipmi does not support attach_virtual_media (disabled or not implemented)."},
		{"no node", "1.89", "POST", "/v1/nodes/nope/vmedia", map[string]any{"device_type": "cdrom", "image_url": url}, 404, "nope"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				b, _ := json.Marshal(tc.body)
				body = strings.NewReader(string(b))
			}
			req, _ := http.NewRequest(tc.method, base+tc.path, body)
			req.Header.Set("X-OpenStack-Ironic-API-Version", tc.ver)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(raw), tc.msg) {
				t.Errorf("%s %s = %d %s; want %d with %q", tc.method, tc.path, resp.StatusCode, raw, tc.want, tc.msg)
			}
			var e struct {
				ErrorMessage string `json:"error_message"`
			}
			if tc.want == 400 && (json.Unmarshal(raw, &e) != nil || e.ErrorMessage == "") {
				t.Errorf("not Ironic's error format: %s", raw)
			}
		})
	}
	if img, _ := emu.Media("m1"); img != "" {
		t.Errorf("a refused request inserted %q", img)
	}

	// Faults of the BMC: in last_error, with the BMC's message.
	if err := nodes.AttachVirtualMedia(ctx, gc, "rf", nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD, ImageURL: images.URL + "/missing.iso",
		ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n := idle("rf"); !strings.Contains(fmt.Sprint(n["last_error"]), "Could not attach device cdrom to node") ||
		!strings.Contains(fmt.Sprint(n["last_error"]), "unable to fetch the image") {
		t.Errorf("refused insert: last_error %v, want the BMC's message", n["last_error"])
	}
	if err := nodes.AttachVirtualMedia(ctx, gc, "bare", nodes.AttachVirtualMediaOpts{DeviceType: nodes.VirtualMediaCD, ImageURL: url,
		ImageDownloadSource: nodes.ImageDownloadSourceHTTP}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n := idle("bare"); !strings.Contains(fmt.Sprint(n["last_error"]), "no virtual media") {
		t.Errorf("BMC without virtual media: last_error %v", n["last_error"])
	}
	r := nodes.GetVirtualMedia(ctx, gc, "bare")
	var ec gophercloud.ErrUnexpectedResponseCode
	if !errors.As(r.Err, &ec) || ec.Actual != 400 || !strings.Contains(string(ec.Body), "no virtual media") {
		t.Errorf("GET vmedia of a BMC without = %v, want 400 naming it", r.Err)
	}
	if img, _ := emu.Media("m1"); img != "" {
		t.Errorf("a refused insert left %q", img)
	}
}
