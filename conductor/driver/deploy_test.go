package driver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadInstanceImage pins a ramdisk deploy's instance_info checks to
// Ironic's messages (deploy_utils.get_image_instance_info and
// image_utils.prepare_boot_iso).
func TestReadInstanceImage(t *testing.T) {
	const uuid = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	missing := "Cannot validate image information for node " + uuid + " because one or more parameters are missing from its instance_info and insufficient information is present to boot from a remote volume. Missing are: "
	tests := []struct {
		name    string
		ii      map[string]any
		want    InstanceImage
		wantErr string
	}{
		{"boot_iso", map[string]any{"boot_iso": "http://x/live.iso"}, InstanceImage{BootISO: "http://x/live.iso", DownloadSource: "local"}, ""},
		{"boot_iso over http", map[string]any{"boot_iso": "http://x/live.iso", "ramdisk_image_download_source": "http"},
			InstanceImage{BootISO: "http://x/live.iso", DownloadSource: "http"}, ""},
		{"kernel and ramdisk", map[string]any{"kernel": "http://x/k", "ramdisk": "http://x/r", "kernel_append_params": "console=ttyS0"},
			InstanceImage{Kernel: "http://x/k", Ramdisk: "http://x/r", Params: "console=ttyS0", DownloadSource: "local"}, ""},
		{"nothing", nil, InstanceImage{}, missing + "['kernel', 'ramdisk']"},
		{"kernel only", map[string]any{"kernel": "http://x/k"}, InstanceImage{}, missing + "['ramdisk']"},
		{"ramdisk only", map[string]any{"ramdisk": "http://x/r"}, InstanceImage{}, missing + "['kernel']"},
		{"boot_iso and image_source", map[string]any{"boot_iso": "http://x/live.iso", "image_source": "http://x/disk.img"}, InstanceImage{},
			"An 'image_source' and 'boot_iso' parameter may not be specified at the same time."},
		{"image_source only", map[string]any{"image_source": "http://x/disk.img"}, InstanceImage{},
			"Unable to find kernel or ramdisk for to generate boot ISO for " + uuid},
		{"bad download source", map[string]any{"boot_iso": "http://x/live.iso", "ramdisk_image_download_source": "swift"}, InstanceImage{},
			`Invalid value for ramdisk_image_download_source: "swift", expected one of local, http`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadInstanceImage(&Node{UUID: uuid, InstanceInfo: tc.ii})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ReadInstanceImage() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadInstanceImage() (-want +got):\n%s", diff)
			}
		})
	}
}
