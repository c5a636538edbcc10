package bmc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestRedfishVirtualMedia inserts and ejects images through the Redfish
// emulator's virtual media into a lab machine's CD drive.
func TestRedfishVirtualMedia(t *testing.T) {
	ctx := context.Background()
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".iso") {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ISO " + r.URL.Path))
	}))
	defer images.Close()
	dir := t.TempDir()
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, CDROM: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := redfish.New(redfish.Config{Username: "admin", Password: "s3cret", MediaDir: dir, Machines: map[string]redfish.Machine{"vm0": q}, Logger: quietLogger()})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	// A BMC without virtual media.
	bare := startEmulator(t, false, "1")

	d := NewRedfish(testConfig())
	e := &emulator{srv: srv, http: hs}
	n := e.node(map[string]any{KeyRedfishPassword: "s3cret"})
	inDrive := func() string {
		p := q.Media()
		if p == "" {
			return ""
		}
		b, _ := os.ReadFile(p)
		return string(b)
	}
	a, b := images.URL+"/a.iso", images.URL+"/b.iso"
	tests := []struct {
		name       string
		op         func() error
		wantErr    string // in the error
		wantImage  string // the BMC's image afterwards
		wantDrive  string // what the machine's drive holds
		wantNoVM   bool   // the error is ErrNoVirtualMedia
		wantTarget bool   // the error is ErrInvalidTarget
	}{
		{name: "insert", op: func() error { return d.InsertMedia(ctx, n, MediaCDROM, a) }, wantImage: a, wantDrive: "ISO /a.iso"},
		{name: "insert the same again", op: func() error { return d.InsertMedia(ctx, n, MediaCDROM, a) }, wantImage: a, wantDrive: "ISO /a.iso"},
		{name: "insert another: ejects first", op: func() error { return d.InsertMedia(ctx, n, MediaDVD, b) }, wantImage: b, wantDrive: "ISO /b.iso"},
		{name: "no floppy", op: func() error { return d.InsertMedia(ctx, n, MediaFloppy, a) }, wantErr: "no virtual media device for floppy", wantNoVM: true, wantImage: b, wantDrive: "ISO /b.iso"},
		{name: "unknown type", op: func() error { return d.InsertMedia(ctx, n, "tape", a) }, wantErr: `"tape"`, wantTarget: true, wantImage: b, wantDrive: "ISO /b.iso"},
		{name: "eject", op: func() error { return d.EjectMedia(ctx, n, MediaCDROM) }},
		{name: "eject empty", op: func() error { return d.EjectMedia(ctx, n, "") }},
		{name: "refused: the BMC's message", op: func() error { return d.InsertMedia(ctx, n, MediaCDROM, images.URL+"/missing.img") },
			wantErr: "the BMC answered: HTTP 400: unable to fetch the image: " + images.URL + "/missing.img: 404 Not Found"},
		{name: "insert after a refusal", op: func() error { return d.InsertMedia(ctx, n, MediaCDROM, a) }, wantImage: a, wantDrive: "ISO /a.iso"},
		{name: "eject all", op: func() error { return d.EjectMedia(ctx, n, "") }},
		{name: "BMC without virtual media", op: func() error { return d.InsertMedia(ctx, bare.node(nil), MediaCDROM, a) }, wantErr: "no virtual media", wantNoVM: true},
		{name: "eject on a BMC without", op: func() error { return d.EjectMedia(ctx, bare.node(nil), "") }, wantErr: "no virtual media", wantNoVM: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrNoVirtualMedia) != tc.wantNoVM || errors.Is(err, ErrInvalidTarget) != tc.wantTarget {
				t.Errorf("error %v: ErrNoVirtualMedia %v, ErrInvalidTarget %v; want %v, %v", err, errors.Is(err, ErrNoVirtualMedia), errors.Is(err, ErrInvalidTarget), tc.wantNoVM, tc.wantTarget)
			}
			if img, _ := srv.Media("vm0"); img != tc.wantImage {
				t.Errorf("BMC image %q, want %q", img, tc.wantImage)
			}
			if got := inDrive(); got != tc.wantDrive {
				t.Errorf("drive holds %q, want %q", got, tc.wantDrive)
			}
		})
	}
	if err := d.InsertMedia(ctx, n, MediaCDROM, b); err != nil {
		t.Fatal(err)
	}
	st, err := d.Media(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].ID != "Cd" || st[0].Image != b || !st[0].Inserted || !st[0].WriteProtected || st[0].ConnectedVia != "URI" || strings.Join(st[0].Types, ",") != "CD,DVD" {
		t.Errorf("Media = %+v", st)
	}
	if _, err := d.Media(ctx, bare.node(nil)); !errors.Is(err, ErrNoVirtualMedia) {
		t.Errorf("Media of a BMC without = %v, want ErrNoVirtualMedia", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".download-*")); len(m) != 0 {
		t.Errorf("downloads left: %v", m)
	}
}
