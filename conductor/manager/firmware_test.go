package manager

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFirmwareImages(t *testing.T) {
	sha1 := strings.Repeat("a", 40)
	for _, tc := range []struct {
		step, args string
		want       []firmwareUpdate
		wantErr    string
	}{
		{"firmware.update", `{"settings": [{"component": "bios", "url": "http://x/b"}, {"component": "bmc", "url": "https://x/m", "wait": 5}]}`,
			[]firmwareUpdate{{Component: "bios", URL: "http://x/b"}, {Component: "bmc", URL: "https://x/m", Wait: 5 * time.Second}}, ""},
		{"firmware.update", `{"settings": []}`, nil, "firmware.update needs settings"},
		{"firmware.update", `{"settings": [{"component": "nic", "url": "http://x/b"}]}`, nil, "want a component bios or bmc"},
		{"firmware.update", `{"settings": [{"component": "bios", "url": "http://x/b", "wait": 0}]}`, nil, "wait 0"},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f", "checksum": "` + sha1 + `", "wait": 2, "source": "http"}]}`,
			[]firmwareUpdate{{URL: "http://x/f", Checksum: sha1, Wait: 2 * time.Second}}, ""},
		{"management.update_firmware", `{}`, nil, "Invalid firmware update null. Errors: firmware_images is required"},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f"}]}`, nil, "'checksum' is a required property"},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f", "checksum": "` + sha1 + `", "extra": 1}]}`, nil, `additional property "extra"`},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f", "checksum": "xyz"}]}`, nil, "not a hex digest"},
		{"management.update_firmware", `{"firmware_images": [{"url": "swift://c/f", "checksum": "` + sha1 + `"}]}`, nil, "only http(s) URLs"},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f", "checksum": "` + sha1 + `", "source": "local"}]}`, nil, "source local: only http"},
		{"management.update_firmware", `{"firmware_images": [{"url": "http://x/f", "checksum": "` + sha1 + `", "wait": 1.5}]}`, nil, "wait 1.5"},
		{"management.update_firmware", `{"firmware_images": []}`, nil, "no firmware images"},
	} {
		iface, step, _ := strings.Cut(tc.step, ".")
		var args map[string]any
		if err := json.Unmarshal([]byte(tc.args), &args); err != nil {
			t.Fatal(err)
		}
		st := map[string]any{"interface": iface, "step": step, "args": args}
		if !isFirmwareUpdate(st) {
			t.Fatalf("%s is not a firmware update step", tc.step)
		}
		got, err := firmwareImages(st)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %s: error %v, want %q", tc.step, tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s %s: %v, %v", tc.step, tc.args, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s %s: image %d = %+v, want %+v", tc.step, tc.args, i, got[i], tc.want[i])
			}
		}
	}
}
