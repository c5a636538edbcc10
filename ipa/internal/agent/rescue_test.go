package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/ipa/shacrypt"
)

// finalize_rescue sets the rescue user's password in the agent's /etc:
// the conductor's hash as is, or a plain password hashed by the agent;
// an agent with no /etc refuses.
func TestFinalizeRescue(t *testing.T) {
	hash, _ := shacrypt.Hash("pw1")
	for _, c := range []struct {
		name, password string
		hashed         bool
		passwd, shadow string
	}{
		{"hashed, user added", hash, true, "root:x:0:0:root:/root:/bin/sh\n", "root:*:19000:0:99999:7:::\n"},
		{"plain, user replaced", "pw2", false, "root:x:0:0::/root:/bin/sh\nrescue:x:1000:1000::/home/rescue:/bin/sh\n",
			"root:*:19000:0:99999:7:::\nrescue:!:19000:0:99999:7:::\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			etc := t.TempDir()
			os.WriteFile(filepath.Join(etc, "passwd"), []byte(c.passwd), 0o644)
			os.WriteFile(filepath.Join(etc, "shadow"), []byte(c.shadow), 0o600)
			a, err := New(Config{APIURLs: []string{"http://127.0.0.1:1"}, MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1",
				Inventory: fakeInventory, Power: nopPower{}, EtcDir: etc})
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(map[string]any{"rescue_password": c.password, "hashed": c.hashed})
			if err := validFinalizeRescue(raw); err != nil {
				t.Fatal(err)
			}
			if _, err := a.cmdFinalizeRescue(context.Background(), raw, nil); err != nil {
				t.Fatal(err)
			}
			shadow, _ := os.ReadFile(filepath.Join(etc, "shadow"))
			var got string
			for _, l := range strings.Split(string(shadow), "\n") {
				if f := strings.Split(l, ":"); f[0] == "rescue" {
					got = f[1]
				}
			}
			want := "pw1"
			if !c.hashed {
				want = "pw2"
			}
			if again, err := shacrypt.Crypt(want, got); err != nil || again != got {
				t.Fatalf("shadow's rescue hash %q does not verify %q", got, want)
			}
			if !strings.HasPrefix(string(shadow), "root:*:") {
				t.Errorf("root's entry changed: %q", shadow)
			}
			passwd, _ := os.ReadFile(filepath.Join(etc, "passwd"))
			if strings.Count(string(passwd), "\nrescue:") != 1 {
				t.Errorf("passwd %q: want one rescue user", passwd)
			}
			if pf, _ := os.ReadFile(filepath.Join(etc, rescuePasswordFile)); string(pf) != got {
				t.Errorf("password file %q, shadow %q", pf, got)
			}
		})
	}
	a, _ := New(Config{APIURLs: []string{"http://127.0.0.1:1"}, MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1",
		Inventory: fakeInventory, Power: nopPower{}})
	if _, err := a.cmdFinalizeRescue(context.Background(), json.RawMessage(`{"rescue_password":"x","hashed":true}`), nil); err == nil {
		t.Error("an agent without --etc-dir set a password")
	}
	if err := validFinalizeRescue(json.RawMessage(`{}`)); err == nil {
		t.Error("finalize_rescue without a password validated")
	}
}
