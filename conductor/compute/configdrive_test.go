package compute

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ferric-metal/ferric/images/configdrive"
)

// TestConfigDriveContents builds a server's config drive and reads it
// back with xorriso: the admin password, the key, the metadata, an
// injected file and the user data are there.
func TestConfigDriveContents(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not found: install Debian package xorriso")
	}
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc0GfG6cB0p3hHhH1r9y9eW3RxHqm8m2l8r6Yq8Pq0V k@test"
	h.keypairs["k1"] = &Keypair{Name: "k1", PublicKey: key}
	rec := record{Name: "web1", KeyName: "k1", Metadata: map[string]string{"role": "web"}}
	req := &buildRequest{adminPass: "s3cret-pass", userData: []byte("#!/bin/sh\necho hi\n"),
		files: []injected{{path: "/etc/motd", content: []byte("hello")}}}
	enc, err := h.configDrive("0b6b5b8e-9f0e-4a3e-9d7c-2f1d8c1e6a11", rec, req)
	if err != nil {
		t.Fatal(err)
	}
	iso, err := configdrive.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	isoPath := filepath.Join(dir, "cd.iso")
	if err := os.WriteFile(isoPath, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if b, err := exec.Command("xorriso", "-osirrox", "on", "-indev", isoPath, "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "openstack/latest/meta_data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		UUID       string            `json:"uuid"`
		Name       string            `json:"name"`
		AdminPass  string            `json:"admin_pass"`
		Meta       map[string]string `json:"meta"`
		PublicKeys map[string]string `json:"public_keys"`
		Files      []struct {
			Path        string `json:"path"`
			ContentPath string `json:"content_path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if md.UUID != "0b6b5b8e-9f0e-4a3e-9d7c-2f1d8c1e6a11" || md.Name != "web1" || md.AdminPass != "s3cret-pass" ||
		md.Meta["role"] != "web" || md.PublicKeys["k1"] != key || len(md.Files) != 1 || md.Files[0].Path != "/etc/motd" {
		t.Fatalf("meta_data.json %s", b)
	}
	content, err := os.ReadFile(filepath.Join(out, "openstack", md.Files[0].ContentPath))
	if err != nil || string(content) != "hello" {
		t.Fatalf("injected file content %q %v", content, err)
	}
	ud, err := os.ReadFile(filepath.Join(out, "openstack/latest/user_data"))
	if err != nil || string(ud) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("user_data %q %v", ud, err)
	}
}
