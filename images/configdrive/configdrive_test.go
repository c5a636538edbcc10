package configdrive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `{
  "meta_data": {"availability_zone": "rack-1", "name": "from-input"},
  "network_data": {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}],
                   "networks": [{"id": "n0", "link": "eth0", "type": "ipv4_dhcp"}], "services": []},
  "user_data": "#cloud-config\nhostname: node-1\n",
  "vendor_data": {"cloud-init": "#cloud-config\n"}
}`

func testNode() Node {
	return Node{
		UUID:       "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
		Name:       "node-1",
		PublicKeys: map[string]string{"mykey": "ssh-ed25519 AAAAC3Nza test@example"},
		Meta:       map[string]string{"role": "compute"},
		Files:      []File{{Path: "/etc/motd", Content: []byte("hello\n")}},
		EC2:        true,
	}
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		input    string
		node     Node
		wantMeta map[string]any
		userData string
		hasNet   bool
		wantErr  error
	}{
		{
			name: "dict with node data", input: sample, node: testNode(),
			wantMeta: map[string]any{
				"uuid": testNode().UUID, "name": "from-input", "hostname": "node-1", "availability_zone": "rack-1",
				"public_keys": map[string]any{"mykey": "ssh-ed25519 AAAAC3Nza test@example"},
				"keys":        []any{map[string]any{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3Nza test@example"}},
				"meta":        map[string]any{"role": "compute"},
				"files":       []any{map[string]any{"path": "/etc/motd", "content_path": "/content/0000"}},
			},
			userData: "#cloud-config\nhostname: node-1\n", hasNet: true,
		},
		{
			name: "user_data object", input: `{"user_data": {"a": [1, 2]}}`, node: Node{UUID: "u1", Name: "n"},
			wantMeta: map[string]any{"uuid": "u1", "name": "n", "hostname": "n"},
			userData: `{"a":[1,2]}`,
		},
		{name: "node only", input: "", node: Node{UUID: "u2"}, wantMeta: map[string]any{"uuid": "u2"}},
		{name: "no uuid", input: `{}`, node: Node{}, wantErr: ErrInvalid},
		{name: "meta value too long", input: `{}`, node: Node{UUID: "u", Meta: map[string]string{"k": strings.Repeat("v", 256)}}, wantErr: ErrInvalid},
		{name: "relative injected file", input: `{}`, node: Node{UUID: "u", Files: []File{{Path: "etc/x"}}}, wantErr: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in *Input
			if tc.input != "" {
				var err error
				if in, err = ParseInput([]byte(tc.input)); err != nil {
					t.Fatalf("ParseInput() error = %v", err)
				}
			}
			d, err := Build(in, tc.node)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Build() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build() error = %v", err)
			}
			for _, v := range append(Versions, "latest") {
				var md map[string]any
				if err := json.Unmarshal(d.Files["openstack/"+v+"/meta_data.json"], &md); err != nil {
					t.Fatalf("%s/meta_data.json: %v", v, err)
				}
				if diff := cmp.Diff(tc.wantMeta, md); diff != "" {
					t.Errorf("%s/meta_data.json mismatch (-want +got):\n%s", v, diff)
				}
				if got := string(d.Files["openstack/"+v+"/user_data"]); got != tc.userData {
					t.Errorf("%s/user_data = %q, want %q", v, got, tc.userData)
				}
			}
			if _, ok := d.Files["openstack/latest/network_data.json"]; ok != tc.hasNet {
				t.Errorf("network_data.json present = %v, want %v", ok, tc.hasNet)
			}
		})
	}
	if _, err := ParseInput([]byte(`{"user_data": "x"} {}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseInput(trailing data) error = %v, want ErrInvalid", err)
	}
	if _, err := ParseInput([]byte(`{"meta_data": []}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseInput(meta_data list) error = %v, want ErrInvalid", err)
	}
}

func buildISO(t *testing.T) (string, *Drive) {
	t.Helper()
	in, err := ParseInput([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(in, testNode())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteISO(context.Background(), &buf); err != nil {
		t.Fatalf("WriteISO() error = %v", err)
	}
	p := filepath.Join(t.TempDir(), "config.iso")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, d
}

// TestISOWithIsoinfo reads the image back with isoinfo (Debian genisoimage)
// through Rock Ridge names.
func TestISOWithIsoinfo(t *testing.T) {
	if _, err := exec.LookPath("isoinfo"); err != nil {
		t.Skip("isoinfo not found: install Debian package genisoimage")
	}
	iso, d := buildISO(t)
	out, err := exec.Command("isoinfo", "-d", "-i", iso).CombinedOutput()
	if err != nil {
		t.Fatalf("isoinfo -d: %v\n%s", err, out)
	}
	for _, want := range []string{"Volume id: config-2", "Rock Ridge", "Joliet"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("isoinfo -d output lacks %q:\n%s", want, out)
		}
	}
	// Both long-name trees list every file (Joliet drops the ";1").
	for _, mode := range []string{"-R", "-J"} {
		out, err := exec.Command("isoinfo", mode, "-f", "-i", iso).Output()
		if err != nil {
			t.Fatalf("isoinfo %s -f: %v", mode, err)
		}
		listed := strings.Fields(string(out))
		for p := range d.Files {
			if !slices.Contains(listed, "/"+p) {
				t.Errorf("isoinfo %s -f does not list /%s; it lists %v", mode, p, listed)
			}
		}
	}
	for _, mode := range []string{"-R", "-J"} {
		for _, p := range []string{"openstack/latest/meta_data.json", "openstack/2012-08-10/meta_data.json", "openstack/latest/network_data.json", "openstack/latest/user_data", "openstack/latest/vendor_data2.json", "openstack/content/0000", "ec2/latest/meta-data.json"} {
			t.Run(mode+" "+p, func(t *testing.T) {
				got, err := exec.Command("isoinfo", mode, "-i", iso, "-x", "/"+p).Output()
				if err != nil {
					t.Fatalf("isoinfo %s -x %s: %v", mode, p, err)
				}
				if !bytes.Equal(got, d.Files[p]) {
					t.Errorf("isoinfo %s -x /%s = %q, want %q", mode, p, got, d.Files[p])
				}
			})
		}
	}
}

// TestISOWithXorriso extracts the whole image with xorriso (Debian xorriso).
func TestISOWithXorriso(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not found: install Debian package xorriso")
	}
	iso, d := buildISO(t)
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dir).CombinedOutput(); err != nil {
		t.Fatalf("xorriso -extract: %v\n%s", err, out)
	}
	for p, want := range d.Files {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("extracted %s: %v", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("extracted %s = %q, want %q", p, got, want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	iso := bytes.Repeat([]byte("CD001"), 1000)
	s, err := Encode(iso)
	if err != nil {
		t.Fatalf("Encode() error = %v", err)
	}
	got, err := Decode(s)
	if err != nil || !bytes.Equal(got, iso) {
		t.Fatalf("Decode(Encode(x)) = %d bytes, %v; want %d bytes", len(got), err, len(iso))
	}
	if _, err := Encode(make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encode(64 MiB + 1) error = %v, want ErrTooLarge", err)
	}
	if got, err := Decode("not base64 at all!"); err != nil || string(got) != "not base64 at all!" {
		t.Errorf("Decode(raw) = %q, %v; want the raw bytes", got, err)
	}
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte(sample), "uuid-1", "name")
	f.Add([]byte(`{"user_data": {"x": null}, "meta_data": {"uuid": ""}}`), "", "")
	f.Add([]byte(`{"user_data": "\u0000\ud800", "vendor_data": {"a": 1e400}}`), "u", "n")
	f.Fuzz(func(t *testing.T, data []byte, uuid, name string) {
		in, err := ParseInput(data)
		if err != nil {
			return
		}
		d, err := Build(in, Node{UUID: uuid, Name: name})
		if err != nil {
			return
		}
		var md map[string]any
		if err := json.Unmarshal(d.Files["openstack/latest/meta_data.json"], &md); err != nil {
			t.Fatalf("meta_data.json is not JSON: %v", err)
		}
		if md["uuid"] == nil || md["uuid"] == "" {
			t.Fatalf("meta_data.json has no uuid: %v", md)
		}
	})
}
