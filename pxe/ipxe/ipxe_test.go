package ipxe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01}

// fakeNodes answers from a map keyed by MAC string; macs in fail error out.
type fakeNodes struct {
	actions map[string]Action
	fail    map[string]bool
}

func (f fakeNodes) BootFor(_ context.Context, mac net.HardwareAddr) (Action, error) {
	if f.fail[mac.String()] {
		return Action{}, errors.New("store unavailable")
	}
	return f.actions[mac.String()], nil
}

func deployRamdisk() Ramdisk {
	return Ramdisk{
		KernelURL: "http://10.99.0.1:6385/boot/files/ipa.kernel",
		InitrdURL: "http://10.99.0.1:6385/boot/files/ipa.initramfs",
		APIURL:    "http://10.99.0.1:6385",
		Console:   []string{"ttyS0,115200n8"},
		ExtraArgs: []Param{{Key: "ipa-debug", Value: "1"}, {Key: "nomodeset", Flag: true}},
	}
}

func TestKernelArgs(t *testing.T) {
	inspect := deployRamdisk()
	inspect.InspectionCallbackURL = "http://10.99.0.1:5050/v1/continue"
	tests := []struct {
		name    string
		r       Ramdisk
		want    string
		invalid bool
	}{
		{name: "deploy", r: deployRamdisk(),
			want: "ipa-api-url=http://10.99.0.1:6385 BOOTIF=01-52-54-00-ab-cd-01 console=ttyS0,115200n8 ipa-debug=1 nomodeset"},
		{name: "inspect", r: inspect,
			want: "ipa-api-url=http://10.99.0.1:6385 ipa-inspection-callback-url=http://10.99.0.1:5050/v1/continue BOOTIF=01-52-54-00-ab-cd-01 console=ttyS0,115200n8 ipa-debug=1 nomodeset"},
		{name: "no api url", r: Ramdisk{}, invalid: true},
		{name: "api url not http", r: Ramdisk{APIURL: "file:///etc/passwd"}, invalid: true},
		{name: "api url with space", r: Ramdisk{APIURL: "http://a b/"}, invalid: true},
		{name: "space in extra", r: Ramdisk{APIURL: "http://a/", ExtraArgs: []Param{{Key: "x", Value: "a b"}}}, invalid: true},
		{name: "ipxe expansion", r: Ramdisk{APIURL: "http://a/", ExtraArgs: []Param{{Key: "x", Value: "${root}"}}}, invalid: true},
		{name: "quote", r: Ramdisk{APIURL: "http://a/", ExtraArgs: []Param{{Key: "x", Value: `"`}}}, invalid: true},
		{name: "newline in console", r: Ramdisk{APIURL: "http://a/", Console: []string{"tty0\nshell"}}, invalid: true},
		{name: "bad key", r: Ramdisk{APIURL: "http://a/", ExtraArgs: []Param{{Key: "a=b", Value: "c"}}}, invalid: true},
		{name: "flag with value", r: Ramdisk{APIURL: "http://a/", ExtraArgs: []Param{{Key: "a", Value: "c", Flag: true}}}, invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := KernelArgs(testMAC, tc.r)
			if tc.invalid {
				if !errors.Is(err, ErrInvalidArg) {
					t.Fatalf("KernelArgs() = %v, %v, want ErrInvalidArg", ps, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := JoinArgs(ps); got != tc.want {
				t.Errorf("KernelArgs() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseParam(t *testing.T) {
	tests := []struct {
		in      string
		want    Param
		invalid bool
	}{
		{in: "console=tty0", want: Param{Key: "console", Value: "tty0"}},
		{in: "quiet", want: Param{Key: "quiet", Flag: true}},
		{in: "a=b=c", want: Param{Key: "a", Value: "b=c"}},
		{in: "a=", want: Param{Key: "a"}},
		{in: "=x", invalid: true},
		{in: "a b", invalid: true},
		{in: "x=${net0/mac}", invalid: true},
		{in: "x=é", invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseParam(tc.in)
			if tc.invalid {
				if !errors.Is(err, ErrInvalidArg) {
					t.Fatalf("ParseParam(%q) = %+v, %v, want ErrInvalidArg", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseParam(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
			if got.String() != tc.in {
				t.Errorf("ParseParam(%q).String() = %q, want round trip", tc.in, got.String())
			}
		})
	}
}

// FuzzScript checks that any parameter accepted by ParseParam keeps the
// rendered kernel line one line, with the argument as one word, and nothing
// that iPXE would expand.
func FuzzScript(f *testing.F) {
	for _, s := range []string{"console=ttyS0", "quiet", "a=b c", "x=${y}", "x=\n#!ipxe", "k=v||shell", "ipa-debug=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		p, err := ParseParam(arg)
		if err != nil {
			return
		}
		r := deployRamdisk()
		r.ExtraArgs = []Param{p}
		s, err := Script(testMAC, Action{Kind: ActionDeploy, Ramdisk: r})
		if err != nil {
			t.Fatalf("Script with accepted param %q: %v", arg, err)
		}
		lines := strings.Split(s, "\n")
		if len(lines) != 10 {
			t.Fatalf("param %q changed the script to %d lines:\n%s", arg, len(lines), s)
		}
		kernel := lines[2]
		fields := strings.Fields(kernel)
		if fields[len(fields)-4] != arg || strings.Contains(arg, "$") {
			t.Fatalf("param %q not one literal word in %q", arg, kernel)
		}
	})
}

func TestScript(t *testing.T) {
	tests := []struct {
		name    string
		action  Action
		want    []string // lines that must appear, in order
		invalid bool
	}{
		{name: "deploy", action: Action{Kind: ActionDeploy, Node: "n1", Ramdisk: deployRamdisk()}, want: []string{
			"#!ipxe",
			"kernel http://10.99.0.1:6385/boot/files/ipa.kernel initrd=ramdisk ipa-api-url=http://10.99.0.1:6385 BOOTIF=01-52-54-00-ab-cd-01 console=ttyS0,115200n8 ipa-debug=1 nomodeset || goto fail",
			"initrd --name ramdisk http://10.99.0.1:6385/boot/files/ipa.initramfs || goto fail",
			"boot || goto fail",
		}},
		{name: "local", action: Action{Kind: ActionLocalDisk}, want: []string{
			"#!ipxe",
			"iseq ${platform} efi && exit 0 ||",
			"sanboot --no-describe --drive 0x80 || exit 0",
		}},
		{name: "unknown", action: Action{Kind: ActionUnknown, Message: "node is in maintenance\n$x"}, want: []string{
			"#!ipxe",
			"echo ferric: 52:54:00:ab:cd:01: node is in maintenance??x",
			"exit 0",
		}},
		{name: "bad kernel url", action: Action{Kind: ActionDeploy, Ramdisk: Ramdisk{KernelURL: "tftp://x/k", InitrdURL: "http://x/i", APIURL: "http://x"}}, invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Script(testMAC, tc.action)
			if tc.invalid {
				if !errors.Is(err, ErrInvalidArg) {
					t.Fatalf("Script() = %q, %v, want ErrInvalidArg", s, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(s, "\n")
			i := 0
			for _, l := range lines {
				if i < len(tc.want) && l == tc.want[i] {
					i++
				}
			}
			if i != len(tc.want) {
				t.Errorf("Script() =\n%s\nmissing line %q (in order)", s, tc.want[i])
			}
		})
	}
}

func TestParseScriptName(t *testing.T) {
	for _, name := range []string{"52:54:00:ab:cd:01.ipxe", "52-54-00-AB-CD-01.ipxe", "525400abcd01.ipxe"} {
		got, err := ParseScriptName(name)
		if err != nil || got.String() != testMAC.String() {
			t.Errorf("ParseScriptName(%q) = %v, %v, want %v", name, got, err, testMAC)
		}
	}
	for _, name := range []string{"52:54:00:ab:cd:01", "x.ipxe", "00:00:00:00:00:00:00:01.ipxe", ".ipxe"} {
		if got, err := ParseScriptName(name); err == nil {
			t.Errorf("ParseScriptName(%q) = %v, want error", name, got)
		}
	}
}

func newTestServer(t *testing.T) (*httptest.Server, []byte) {
	t.Helper()
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := make([]byte, 100_000)
	for i := range kernel {
		kernel[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(files, "ipa.kernel"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret"), filepath.Join(files, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(files, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	nodes := fakeNodes{
		actions: map[string]Action{
			testMAC.String():    {Kind: ActionDeploy, Node: "n1", Ramdisk: deployRamdisk()},
			"52:54:00:ab:cd:02": {Kind: ActionLocalDisk, Node: "n2"},
			"52:54:00:ab:cd:03": {Kind: ActionDeploy, Node: "n3", Ramdisk: Ramdisk{KernelURL: "http://x/k", InitrdURL: "http://x/i", APIURL: "http://x y"}},
		},
		fail: map[string]bool{"52:54:00:ab:cd:04": true},
	}
	h, err := New(Config{BaseURL: "http://10.99.0.1:6385/boot", Nodes: nodes, FilesDir: files, FirmwareDir: "-",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mux := http.NewServeMux()
	mux.Handle("/boot/", http.StripPrefix("/boot", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, kernel
}

func TestHandler(t *testing.T) {
	srv, kernel := newTestServer(t)
	tests := []struct {
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string // substring
		wantBytes  []byte // exact body
	}{
		{path: "/boot/boot.ipxe", wantStatus: 200, wantBody: "chain --autofree http://10.99.0.1:6385/boot/nodes/${net0/mac}.ipxe || goto fail"},
		{path: "/boot/nodes/52:54:00:ab:cd:01.ipxe", wantStatus: 200, wantBody: "BOOTIF=01-52-54-00-ab-cd-01"},
		{path: "/boot/nodes/52:54:00:ab:cd:02.ipxe", wantStatus: 200, wantBody: "sanboot --no-describe --drive 0x80"},
		{path: "/boot/nodes/52:54:00:ab:cd:09.ipxe", wantStatus: 200, wantBody: "no boot action for this MAC address"},
		{path: "/boot/nodes/52:54:00:ab:cd:03.ipxe", wantStatus: 500, wantBody: "cannot render"},
		{path: "/boot/nodes/52:54:00:ab:cd:04.ipxe", wantStatus: 500, wantBody: "boot decision failed"},
		{path: "/boot/nodes/nonsense.ipxe", wantStatus: 404},
		{path: "/boot/files/ipa.kernel", wantStatus: 200, wantBytes: kernel},
		{path: "/boot/files/ipa.kernel", header: map[string]string{"Range": "bytes=10-19"}, wantStatus: 206, wantBytes: kernel[10:20]},
		{path: "/boot/files/ipa.kernel", header: map[string]string{"Range": "bytes=99990-"}, wantStatus: 206, wantBytes: kernel[99990:]},
		{path: "/boot/files/escape", wantStatus: 404},
		{path: "/boot/files/sub", wantStatus: 404},
		{path: "/boot/files/", wantStatus: 404},
		{path: "/boot/files/missing", wantStatus: 404},
		{path: "/boot/files/%2e%2e/secret", wantStatus: 404},
		{path: "/boot/files/..%2fsecret", wantStatus: 404},
		{path: "/boot/firmware/undionly.kpxe", wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("GET %s = %d, want %d; body %q", tc.path, resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != "" && !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET %s body = %q, want it to contain %q", tc.path, body, tc.wantBody)
			}
			if tc.wantBytes != nil && string(body) != string(tc.wantBytes) {
				t.Errorf("GET %s body: %d bytes, want %d bytes (equal: false)", tc.path, len(body), len(tc.wantBytes))
			}
			if strings.Contains(string(body), "secret") && !strings.Contains(tc.path, "nodes") {
				t.Errorf("GET %s leaked the file outside the root", tc.path)
			}
		})
	}
}

// TestRawTraversal sends request lines that a browser would never send,
// with ".." left in the path.
func TestRawTraversal(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, p := range []string{"/boot/files/../../secret", "/boot/files/sub/../../secret", "/boot/files/./../secret"} {
		t.Run(p, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", p)
			resp, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			status := strings.SplitN(string(resp), "\r\n", 2)[0]
			if strings.Contains(string(resp), "\r\n\r\nsecret") || strings.Contains(status, " 200 ") {
				t.Fatalf("GET %s = %q, want no file", p, status)
			}
		})
	}
}
