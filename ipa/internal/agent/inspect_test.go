package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/inspector/inventory"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

type nopPower struct{}

func (nopPower) PowerOff(context.Context, bool) error { return nil }

func sp(s string) *string { return &s }

func fakeInventory(context.Context) (protocol.Inventory, error) {
	return protocol.Inventory{
		CPU:    protocol.CPU{Count: 4, Architecture: "x86_64", Flags: []string{"vmx"}},
		Memory: protocol.Memory{Total: 8 << 30, PhysicalMB: 8192},
		Disks: []protocol.Disk{
			{Name: "/dev/sda", Size: 100 << 30},
			{Name: "/dev/sdb", Size: 20 << 30},
			{Name: "/dev/sdc", Size: 1 << 30},
		},
		Interfaces: []protocol.Interface{{Name: "eth0", MACAddress: "52:54:00:12:34:56", LLDP: []protocol.TLV{{Type: 1, Value: "04"}}}},
		Boot:       protocol.Boot{CurrentBootMode: "uefi", PXEInterface: sp("52:54:00:12:34:56")},
	}, nil
}

// fakeIronic answers inspection posts with the statuses in order (the last
// one repeating), and lookups with 404.
type fakeIronic struct {
	mu       sync.Mutex
	statuses []int
	posts    [][]byte
	versions []string
	events   []string
	lookedUp chan struct{}
}

func (f *fakeIronic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/continue_inspection":
		b, _ := io.ReadAll(r.Body)
		f.posts = append(f.posts, b)
		f.versions = append(f.versions, r.Header.Get(protocol.VersionHeader))
		f.events = append(f.events, "inspect")
		st := f.statuses[min(len(f.posts)-1, len(f.statuses)-1)]
		w.WriteHeader(st)
		if st == http.StatusAccepted {
			io.WriteString(w, `{"node": {"uuid": "n1"}, "config": {"agent_token": "tok-from-inspection-0123456789abcdef"}}`)
		}
	case r.URL.Path == "/":
		io.WriteString(w, `{"default_version": {"version": "1.99"}}`)
	case r.URL.Path == "/v1/lookup":
		f.events = append(f.events, "lookup")
		if f.lookedUp != nil {
			close(f.lookedUp)
			f.lookedUp = nil
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

func runAgent(t *testing.T, f *fakeIronic, callback string) {
	t.Helper()
	f.lookedUp = make(chan struct{})
	done := f.lookedUp
	a, err := New(Config{
		InspectionCallbackURL: callback, MACs: []string{"52:54:00:12:34:56"},
		Listen: "127.0.0.1:0", AdvertiseHost: "127.0.0.1", Inventory: fakeInventory, Power: nopPower{},
		InspectionRetryMin: time.Millisecond, InspectionRetryMax: 5 * time.Millisecond,
		LookupMin: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Error("the agent never looked up after inspection")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run() = %v", err)
	}
}

func TestInspectThenLookup(t *testing.T) {
	f := &fakeIronic{statuses: []int{http.StatusServiceUnavailable, http.StatusConflict, http.StatusAccepted}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	runAgent(t, f, srv.URL+"/v1/continue_inspection")

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) != 3 {
		t.Fatalf("inspection posts = %d, want 3 (503 and 409 retried)", len(f.posts))
	}
	if want := []string{"inspect", "inspect", "inspect", "lookup"}; len(f.events) < 4 || !slices.Equal(f.events[:4], want) {
		t.Errorf("calls = %v, want %v first", f.events, want)
	}
	if f.versions[0] != "1.84" {
		t.Errorf("inspection post API version = %q, want 1.84", f.versions[0])
	}
	// The conductor's parser accepts what the agent sends.
	d, err := inventory.Parse(f.posts[2])
	if err != nil {
		t.Fatalf("inventory.Parse(posted body) = %v\n%s", err, f.posts[2])
	}
	if d.Inventory.CPU.Count != 4 || d.Inventory.PXEMAC() != "52:54:00:12:34:56" || len(d.Inventory.Interfaces[0].LLDP) != 1 {
		t.Errorf("posted inventory = %+v", d.Inventory)
	}
	if rd, _ := d.PluginData["root_disk"].(map[string]any); rd["name"] != "/dev/sdb" {
		t.Errorf("root_disk = %v, want /dev/sdb (smallest ≥ 4 GiB)", d.PluginData["root_disk"])
	}
	if d.PluginData["boot_interface"] != "01-52-54-00-12-34-56" {
		t.Errorf("boot_interface = %v, want 01-52-54-00-12-34-56", d.PluginData["boot_interface"])
	}
	if e, ok := d.PluginData["error"]; !ok || e != nil {
		t.Errorf("error = %v (present %t), want null", e, ok)
	}
}

func TestInspectFailureStillLooksUp(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantPosts int
	}{
		{"400 is not retried", http.StatusBadRequest, 1},
		{"500 is retried, then given up", http.StatusInternalServerError, DefaultInspectionAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIronic{statuses: []int{tt.status}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			runAgent(t, f, srv.URL+"/v1/continue_inspection")
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.posts) != tt.wantPosts {
				t.Errorf("inspection posts = %d, want %d", len(f.posts), tt.wantPosts)
			}
		})
	}
}

func TestAPIFromCallback(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://10.0.0.1:6385/v1/continue_inspection", "http://10.0.0.1:6385"},
		{"http://10.0.0.1:6385/baremetal/v1/continue_inspection/", "http://10.0.0.1:6385/baremetal"},
		{"http://10.0.0.1:6385/v1/continue_inspection?node_uuid=x", "http://10.0.0.1:6385"},
		{"http://10.0.0.1:5050/v1/continue", ""},
		{"/v1/continue_inspection", ""},
	}
	for _, tt := range tests {
		if got := apiFromCallback(tt.in); got != tt.want {
			t.Errorf("apiFromCallback(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewNeedsAnURL(t *testing.T) {
	base := Config{MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1", Inventory: fakeInventory, Power: nopPower{}}
	if _, err := New(base); err == nil {
		t.Errorf("New(no API URL, no callback) = nil error")
	}
	c := base
	c.InspectionCallbackURL = "http://127.0.0.1:5050/v1/continue"
	c.MACs = nil
	if _, err := New(c); err != nil {
		t.Errorf("New(inspector callback only) = %v, want inspect-only agent", err)
	}
}
