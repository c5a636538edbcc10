package redfish

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// cdMachine is a machine with a CD drive that records what is in it.
type cdMachine struct {
	nopMachine
	mu   sync.Mutex
	file string
	data string
}

func (m *cdMachine) InsertMedia(_ context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.file, m.data = path, string(b)
	return nil
}

func (m *cdMachine) EjectMedia(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.file, m.data = "", ""
	return nil
}

func TestVirtualMedia(t *testing.T) {
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/boot.iso" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ISO-CONTENT")
	}))
	defer images.Close()
	cd := &cdMachine{}
	dir := t.TempDir()
	srv := New(Config{Username: "admin", Password: "pw", MediaDir: dir,
		Machines: map[string]Machine{"1": cd, "2": &nopMachine{}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	// A BMC with no media directory has no virtual media at all.
	bare := httptest.NewServer(New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": &cdMachine{}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer bare.Close()

	const sysCD = "/redfish/v1/Systems/1/VirtualMedia/Cd"
	const mgrCD = "/redfish/v1/Managers/1/VirtualMedia/Cd"
	iso := images.URL + "/boot.iso"
	tests := []struct {
		name, method, path, body string
		want                     int
		wantImage                string // the system's image afterwards
		wantData                 string // what the machine's drive holds
	}{
		{"collection", "GET", "/redfish/v1/Systems/1/VirtualMedia", "", 200, "", ""},
		{"manager collection", "GET", "/redfish/v1/Managers/1/VirtualMedia", "", 200, "", ""},
		{"empty cd", "GET", sysCD, "", 200, "", ""},
		{"no such device", "GET", "/redfish/v1/Systems/1/VirtualMedia/Floppy", "", 404, "", ""},
		{"machine without a drive", "GET", "/redfish/v1/Systems/2/VirtualMedia", "", 404, "", ""},
		{"insert without image", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{"Inserted":true}`, 400, "", ""},
		{"insert ftp", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{"Image":"ftp://x/boot.iso"}`, 400, "", ""},
		{"insert protocol mismatch", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + iso + `","TransferProtocolType":"HTTPS"}`, 400, "", ""},
		{"insert missing image", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + images.URL + `/nope.iso"}`, 400, "", ""},
		{"insert bad json", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{`, 400, "", ""},
		{"insert", "POST", sysCD + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + iso + `","Inserted":true,"WriteProtected":true,"TransferProtocolType":"HTTP"}`, 204, iso, "ISO-CONTENT"},
		{"insert twice", "POST", mgrCD + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + iso + `"}`, 409, iso, "ISO-CONTENT"},
		{"eject through the manager", "POST", mgrCD + "/Actions/VirtualMedia.EjectMedia", `{}`, 204, "", ""},
		{"eject empty", "POST", sysCD + "/Actions/VirtualMedia.EjectMedia", `{}`, 204, "", ""},
		{"patch insert", "PATCH", mgrCD, `{"Image":"` + iso + `","Inserted":true}`, 204, iso, "ISO-CONTENT"},
		{"patch read-only property", "PATCH", sysCD, `{"MediaTypes":["USBStick"]}`, 400, iso, "ISO-CONTENT"},
		{"patch eject", "PATCH", sysCD, `{"Image":null}`, 204, "", ""},
		{"patch nothing", "PATCH", sysCD, `{"WriteProtected":true}`, 400, "", ""},
		{"action GET", "GET", sysCD + "/Actions/VirtualMedia.InsertMedia", "", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := vmDo(t, hs.URL, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
			if img, _ := srv.Media("1"); img != tc.wantImage {
				t.Errorf("image %q, want %q", img, tc.wantImage)
			}
			cd.mu.Lock()
			data := cd.data
			cd.mu.Unlock()
			if data != tc.wantData {
				t.Errorf("drive holds %q, want %q", data, tc.wantData)
			}
		})
	}
	// The state a client reads, and no download left behind after the eject.
	vmDo(t, hs.URL, "POST", sysCD+"/Actions/VirtualMedia.InsertMedia", `{"Image":"`+iso+`"}`)
	var m struct {
		Image, ConnectedVia      string
		Inserted, WriteProtected bool
		Actions                  map[string]struct{ Target string }
	}
	resp := vmDo(t, hs.URL, "GET", mgrCD, "")
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Image != iso || !m.Inserted || !m.WriteProtected || m.ConnectedVia != "URI" || m.Actions["#VirtualMedia.InsertMedia"].Target != mgrCD+"/Actions/VirtualMedia.InsertMedia" {
		t.Errorf("media = %+v", m)
	}
	vmDo(t, hs.URL, "POST", sysCD+"/Actions/VirtualMedia.EjectMedia", `{}`)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left after eject: %v", left)
	}
	// The system and manager link their media only when they have some.
	for _, tc := range []struct {
		base, path string
		want       bool
	}{{hs.URL, "/redfish/v1/Systems/1", true}, {hs.URL, "/redfish/v1/Managers/1", true}, {hs.URL, "/redfish/v1/Systems/2", false}, {bare.URL, "/redfish/v1/Systems/1", false}} {
		var o map[string]any
		if err := json.NewDecoder(vmDo(t, tc.base, "GET", tc.path, "").Body).Decode(&o); err != nil {
			t.Fatal(err)
		}
		if _, ok := o["VirtualMedia"]; ok != tc.want {
			t.Errorf("%s has VirtualMedia %v, want %v", tc.path, ok, tc.want)
		}
	}
	if resp := vmDo(t, bare.URL, "GET", "/redfish/v1/Systems/1/VirtualMedia", ""); resp.StatusCode != 404 {
		t.Errorf("VirtualMedia of a BMC without = %d, want 404", resp.StatusCode)
	}
}

func TestUefiHttpOverride(t *testing.T) {
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": &nopMachine{}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	const sys = "/redfish/v1/Systems/1"
	tests := []struct {
		name, body string
		want       int
	}{
		{"needs UEFI", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","HttpBootUri":"http://10.0.0.1/boot.efi"}}`, 400},
		{"needs a URI", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideMode":"UEFI"}}`, 400},
		{"ftp URI", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideMode":"UEFI","HttpBootUri":"ftp://x/boot.efi"}}`, 400},
		{"http boot", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideMode":"UEFI","HttpBootUri":"http://10.0.0.1/boot.efi"}}`, 204},
	}
	for _, tc := range tests {
		if resp := vmDo(t, hs.URL, "PATCH", sys, tc.body); resp.StatusCode != tc.want {
			t.Errorf("%s: PATCH = %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	want := Boot{BootSourceOverrideTarget: "UefiHttp", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "UEFI", HttpBootUri: "http://10.0.0.1/boot.efi"}
	if b, _ := srv.BootOverride("1"); b != want {
		t.Errorf("BootOverride = %+v, want %+v", b, want)
	}
	// The override is used by the next start, then forgotten.
	vmDo(t, hs.URL, "POST", sys+"/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`)
	if b, _ := srv.BootOverride("1"); b.BootSourceOverrideTarget != "None" || b.HttpBootUri != "" {
		t.Errorf("after the boot: %+v", b)
	}
}

func vmDo(t *testing.T, base, method, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// usbMachine is a cdMachine with a USB stick slot that records what is in
// it.
type usbMachine struct {
	cdMachine
	usb cdMachine
}

func (m *usbMachine) HasUSB() bool { return true }

func (m *usbMachine) InsertUSB(ctx context.Context, path string) error {
	return m.usb.InsertMedia(ctx, path)
}
func (m *usbMachine) EjectUSB(ctx context.Context) error { return m.usb.EjectMedia(ctx) }

// TestVirtualMediaUSBStick: a machine with a USB slot has a second
// virtual media device, UsbStick (MediaTypes USBStick), that inserts and
// ejects independently of the CD; a machine without one lists the CD only.
func TestVirtualMediaUSBStick(t *testing.T) {
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "IMAGE"+r.URL.Path)
	}))
	defer images.Close()
	m := &usbMachine{}
	srv := New(Config{Username: "admin", Password: "pw", MediaDir: t.TempDir(),
		Machines: map[string]Machine{"1": m, "2": &cdMachine{}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	members := func(sys string) []string {
		var c struct {
			Members []struct {
				ID string `json:"@odata.id"`
			}
		}
		if err := json.NewDecoder(vmDo(t, hs.URL, "GET", "/redfish/v1/Systems/"+sys+"/VirtualMedia", "").Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range c.Members {
			out = append(out, x.ID[strings.LastIndex(x.ID, "/")+1:])
		}
		return out
	}
	if got := strings.Join(members("1"), ","); got != "Cd,UsbStick" {
		t.Errorf("system 1 media %s, want Cd,UsbStick", got)
	}
	if got := strings.Join(members("2"), ","); got != "Cd" {
		t.Errorf("system 2 media %s, want Cd", got)
	}
	var dev struct{ MediaTypes []string }
	if err := json.NewDecoder(vmDo(t, hs.URL, "GET", "/redfish/v1/Managers/1/VirtualMedia/UsbStick", "").Body).Decode(&dev); err != nil {
		t.Fatal(err)
	}
	if strings.Join(dev.MediaTypes, ",") != "USBStick" {
		t.Errorf("UsbStick MediaTypes %v", dev.MediaTypes)
	}
	const usb = "/redfish/v1/Systems/1/VirtualMedia/UsbStick"
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		wantUSB, wantCD          string // what the slots hold afterwards
	}{
		{"insert usb", "POST", usb + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + images.URL + `/cd.img"}`, 204, "IMAGE/cd.img", ""},
		{"insert cd beside", "POST", "/redfish/v1/Systems/1/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia", `{"Image":"` + images.URL + `/boot.iso"}`, 204, "IMAGE/cd.img", "IMAGE/boot.iso"},
		{"usb in use", "POST", usb + "/Actions/VirtualMedia.InsertMedia", `{"Image":"` + images.URL + `/other.img"}`, 409, "IMAGE/cd.img", "IMAGE/boot.iso"},
		{"eject usb", "POST", usb + "/Actions/VirtualMedia.EjectMedia", `{}`, 204, "", "IMAGE/boot.iso"},
		{"no usb on system 2", "GET", "/redfish/v1/Systems/2/VirtualMedia/UsbStick", "", 404, "", "IMAGE/boot.iso"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := vmDo(t, hs.URL, tc.method, tc.path, tc.body); resp.StatusCode != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
			m.usb.mu.Lock()
			u := m.usb.data
			m.usb.mu.Unlock()
			m.mu.Lock()
			c := m.data
			m.mu.Unlock()
			if u != tc.wantUSB || c != tc.wantCD {
				t.Errorf("usb %q cd %q, want %q %q", u, c, tc.wantUSB, tc.wantCD)
			}
		})
	}
	if img, in := srv.MediaOf("1", "UsbStick"); img != "" || in {
		t.Errorf("MediaOf UsbStick = %q %v after the eject", img, in)
	}
}

// httpBootMachine records the HTTP boot URIs it is handed, and the one it
// held at each start.
type httpBootMachine struct {
	nopMachine
	uri    string
	booted []string
}

func (m *httpBootMachine) SetHTTPBootURI(_ context.Context, uri string) error {
	m.uri = uri
	return nil
}
func (m *httpBootMachine) PowerOn(ctx context.Context) error {
	m.booted = append(m.booted, m.uri)
	return m.nopMachine.PowerOn(ctx)
}

// TestUefiHttpOverrideURI: a machine that is an HTTPBootMachine gets the
// UefiHttp override's URI before it starts, each start while the override
// is Continuous, none after a Once override was consumed or another target
// was set.
func TestUefiHttpOverrideURI(t *testing.T) {
	m := &httpBootMachine{}
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": m},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	const sys = "/redfish/v1/Systems/1"
	cycle := func() {
		vmDo(t, hs.URL, "POST", sys+"/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`)
		vmDo(t, hs.URL, "POST", sys+"/Actions/ComputerSystem.Reset", `{"ResetType":"ForceOff"}`)
	}
	const a, b = "http://10.0.2.2/a.iso", "http://10.0.2.2/b.efi"
	vmDo(t, hs.URL, "PATCH", sys, `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Continuous","BootSourceOverrideMode":"UEFI","HttpBootUri":"`+a+`"}}`)
	cycle()
	cycle()
	vmDo(t, hs.URL, "PATCH", sys, `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once","HttpBootUri":"`+b+`"}}`)
	cycle()
	cycle()
	vmDo(t, hs.URL, "PATCH", sys, `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Continuous","HttpBootUri":"`+a+`"}}`)
	vmDo(t, hs.URL, "PATCH", sys, `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous"}}`)
	cycle()
	if got, want := strings.Join(m.booted, " "), a+" "+a+" "+b+"  "; got != want {
		t.Errorf("URIs at each start %q, want %q", got, want)
	}
}
