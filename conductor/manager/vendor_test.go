package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// recordingVendor is a vendor interface that records its calls.
type recordingVendor struct {
	mu    sync.Mutex
	calls []string
	done  chan struct{}
}

func (v *recordingVendor) Methods() map[string]driver.VendorMethod {
	return map[string]driver.VendorMethod{
		"poke":  {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true},
		"stats": {HTTPMethods: []string{"GET"}},
	}
}

func (v *recordingVendor) ValidateCall(_ *driver.Node, _ string, args map[string]any) error {
	if args["bad"] != nil {
		return errors.New("bad argument")
	}
	return nil
}

func (v *recordingVendor) Call(_ context.Context, n *driver.Node, method string, _ map[string]any) (any, error) {
	v.mu.Lock()
	v.calls = append(v.calls, method+"@"+n.UUID)
	v.mu.Unlock()
	if method == "poke" {
		close(v.done)
	}
	return map[string]any{"calls": len(v.calls)}, nil
}

func TestVendorPassthru(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir() + "/ferric.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := &recordingVendor{done: make(chan struct{})}
	m := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "c1", Drivers: fakeDrivers("vendor", "rec", v)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(t, ctx, m)
	const id = "44444444-4444-4444-4444-444444444444"
	put := func(vendor string) {
		if err := st.Update(ctx, func(tx store.Tx) error {
			n, err := tx.Node(id)
			if err != nil {
				n = &store.Node{UUID: id, Driver: "fake-hardware", ProvisionState: "available"}
			}
			n.Interfaces = map[string]string{"vendor": vendor}
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	put("no-vendor")
	if ms, err := m.VendorMethods(id); err != nil || len(ms) != 0 {
		t.Errorf("no-vendor methods: %v, %v", ms, err)
	}
	if _, _, err := m.VendorPassthru(ctx, id, "poke", "POST", nil); err == nil || !strings.Contains(err.Error(), "No handler for method poke") {
		t.Errorf("no-vendor call: %v", err)
	}
	put("rec")
	if ms, _ := m.VendorMethods(id); len(ms) != 2 {
		t.Errorf("methods: %v", ms)
	}
	if _, _, err := m.VendorPassthru(ctx, id, "poke", "get", nil); err == nil || !strings.Contains(err.Error(), "does not support HTTP GET") {
		t.Errorf("wrong HTTP method: %v", err)
	}
	if _, _, err := m.VendorPassthru(ctx, id, "poke", "POST", map[string]any{"bad": 1}); err == nil || !strings.Contains(err.Error(), "bad argument") {
		t.Errorf("invalid args: %v", err)
	}
	ret, async, err := m.VendorPassthru(ctx, id, "stats", "GET", nil)
	if err != nil || async || ret.(map[string]any)["calls"] != 1 {
		t.Errorf("sync call: %v %v %v", ret, async, err)
	}
	_, async, err = m.VendorPassthru(ctx, id, "poke", "POST", nil)
	if err != nil || !async {
		t.Fatalf("async call: %v %v", async, err)
	}
	select {
	case <-v.done:
	case <-time.After(5 * time.Second):
		t.Fatal("async vendor call never ran")
	}
	// The node was locked for the call and is released after it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := st.Node(id)
		if n.Reservation == nil {
			if n.ProvisionState != "available" || n.LastError != nil {
				t.Errorf("node after the call: %s, %v", n.ProvisionState, n.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node still locked after the async call")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
