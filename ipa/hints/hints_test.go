package hints

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

func sp(s string) *string { return &s }

var disks = []protocol.Disk{
	{Name: "/dev/sda", Model: "Samsung SSD 870", Size: 500 << 30, Serial: sp("S1"), WWN: sp("0x5000c500"), Vendor: sp("ATA")},
	{Name: "/dev/sdb", Model: "ST2000", Size: 2000 << 30, Rotational: true, Serial: sp("Z2"), HCTL: sp("1:0:0:0")},
	{Name: "/dev/nvme0n1", Model: "INTEL SSDPE", Size: 100 << 30, Serial: sp("N3"), Tran: sp("nvme")},
	{Name: "/dev/sdc", Model: "USB stick", Size: 2 << 30},
}

func TestSelect(t *testing.T) {
	tests := []struct {
		hints   string
		want    string
		wantErr bool
	}{
		{`{}`, "/dev/nvme0n1", false},
		{`{"size": 500}`, "/dev/sda", false},
		{`{"size": ">= 600"}`, "/dev/sdb", false},
		{`{"size": "= 600"}`, "/dev/sdb", false},
		{`{"size": "<range-in> [100 500]"}`, "/dev/sda", false},
		{`{"size": "<range-in> (100 500]"}`, "/dev/sda", false},
		{`{"size": "<range-in> (1 100]"}`, "/dev/nvme0n1", false},
		{`{"size": "< 50"}`, "/dev/sdc", false},
		{`{"model": "<in> samsung"}`, "/dev/sda", false},
		{`{"model": "s== INTEL SSDPE"}`, "/dev/nvme0n1", false},
		{`{"model": "INTEL%20SSDPE"}`, "/dev/nvme0n1", false},
		{`{"model": "s!= samsung ssd 870", "rotational": true}`, "/dev/sdb", false},
		{`{"model": "<or> st2000 <or> usb stick", "size": "> 10"}`, "/dev/sdb", false},
		{`{"model": "<all-in> intel ssd"}`, "/dev/nvme0n1", false},
		{`{"serial": ["X", "N3"]}`, "/dev/nvme0n1", false},
		{`{"serial": "z2"}`, "/dev/sdb", false},
		{`{"name": "sdb"}`, "/dev/sdb", false},
		{`{"name": "/dev/sda"}`, "/dev/sda", false},
		{`{"rotational": "false", "size": ">= 400"}`, "/dev/sda", false},
		{`{"hctl": "1:0:0:0"}`, "/dev/sdb", false},
		{`{"tran": "nvme"}`, "/dev/nvme0n1", false},
		{`{"wwn": "0x5000C500"}`, "/dev/sda", false},
		{`{"vendor": "ata", "size": 500}`, "/dev/sda", false},
		{`{"size": 7}`, "", true},
		{`{"hctl": "9:9:9:9"}`, "", true},
		{`{"colour": "red"}`, "", true},
		{`{"rotational": "maybe"}`, "", true},
		{`{"size": "<range-in> 1 2"}`, "", true},
		{`{"size": "<range-in> [a 2]"}`, "", true},
		{`{"serial": []}`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.hints, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.hints), &m); err != nil {
				t.Fatal(err)
			}
			h, err := Parse(m)
			var d protocol.Disk
			if err == nil {
				d, err = Select(disks, h, nil, MinDefaultSize)
			}
			if (err != nil) != tc.wantErr || d.Name != tc.want {
				t.Errorf("Select(%s) = %q, %v; want %q (err %v)", tc.hints, d.Name, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSelectTies(t *testing.T) {
	d, err := Select([]protocol.Disk{{Name: "/dev/vdb", Size: 8 << 30}, {Name: "/dev/vda", Size: 8 << 30}, {Name: "/dev/vdc", Size: 1 << 30}}, nil, nil, MinDefaultSize)
	if err != nil || d.Name != "/dev/vda" {
		t.Errorf("Select = %q, %v; want /dev/vda", d.Name, err)
	}
}

// dellDisks mirror ../testdata/dell.json.
var dellDisks = []protocol.Disk{
	{Name: "/dev/sda", Model: "DELLBOSS VD", Size: 480036519936, WWN: sp("0x6d0946606a1b2c00"), Serial: sp("6c1bd2a3b4c5d6e7"), Vendor: sp("DELL"), HCTL: sp("15:0:0:0"), ByPath: sp("/dev/disk/by-path/pci-0000:3b:00.0-ata-1")},
	{Name: "/dev/sdb", Model: "MZ7LH1T9HMLT0D3", Size: 1920383410176, WWN: sp("0x5002538e1234abcd"), Serial: sp("S455NY0M123456"), Vendor: sp("ATA"), HCTL: sp("0:0:1:0"), ByPath: sp("/dev/disk/by-path/pci-0000:18:00.0-scsi-0:0:1:0")},
	{Name: "/dev/sdc", Model: "ST4000NM0295", Size: 4000787030016, Rotational: true, WWN: sp("0x5000c500b1a2b3c4"), Serial: sp("ZC1ABCDE"), Vendor: sp("SEAGATE"), HCTL: sp("0:0:2:0"), ByPath: sp("/dev/disk/by-path/pci-0000:18:00.0-scsi-0:0:2:0")},
}

func mustParse(t *testing.T, js string) Hints {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(js), &raw); err != nil {
		t.Fatal(err)
	}
	h, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse(%s) error = %v", js, err)
	}
	return h
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Hints
	}{
		{`{}`, nil},
		{`{"size": 100}`, Hints{{Name: "size", Op: "==", Values: []string{"100"}}}},
		{`{"size": ">= 100"}`, Hints{{Name: "size", Op: ">=", Values: []string{"100"}}}},
		{`{"size": "<or> 100 <or> 200"}`, Hints{{Name: "size", Op: "<or>", Values: []string{"100", "200"}}}},
		{`{"model": "Foo Bar"}`, Hints{{Name: "model", Op: "s==", Values: []string{"foo%20bar"}}}},
		{`{"model": "<in> BOSS"}`, Hints{{Name: "model", Op: "<in>", Values: []string{"boss"}}}},
		{`{"serial": "s!= abc"}`, Hints{{Name: "serial", Op: "s!=", Values: []string{"abc"}}}},
		{`{"vendor": "<or> ata <or> dell"}`, Hints{{Name: "vendor", Op: "<or>", Values: []string{"ata", "dell"}}}},
		{`{"rotational": "false", "name": "/dev/sdb"}`, Hints{
			{Name: "name", Op: "s==", Values: []string{"/dev/sdb"}},
			{Name: "rotational", Bool: false},
		}},
		{`{"rotational": true}`, Hints{{Name: "rotational", Bool: true}}},
		{`{"hctl": "0:0:1:0"}`, Hints{{Name: "hctl", Op: "s==", Values: []string{"0%3A0%3A1%3A0"}}}},
		{`{"model": "Foo%20Bar"}`, Hints{{Name: "model", Op: "s==", Values: []string{"foo%20bar"}}}},
		{`{"model": "<all-in> Intel SSD"}`, Hints{{Name: "model", Op: "<all-in>", Values: []string{"intel", "ssd"}}}},
		{`{"size": "<range-in> (10 20]"}`, Hints{{Name: "size", Op: "<range-in>", Values: []string{"(", "10", "20", "]"}}}},
		{`{"name": "sda"}`, Hints{{Name: "name", Op: "s==", Values: []string{"/dev/sda"}}}},
		{`{"name": "<or> sda <or> /dev/vda"}`, Hints{{Name: "name", Op: "<or>", Values: []string{"/dev/sda", "/dev/vda"}}}},
		{`{"serial": ["S1", "s 2"]}`, Hints{{Name: "serial", Op: "<or>", Values: []string{"s1", "s%202"}}}},
		{`{"tran": "NVMe"}`, Hints{{Name: "tran", Op: "s==", Values: []string{"nvme"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, mustParse(t, tt.in)); diff != "" {
				t.Errorf("Parse(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		`{"colour": "red"}`,
		`{"size": 0}`,
		`{"size": -4}`,
		`{"size": 1.5}`,
		`{"size": "big"}`,
		`{"size": ">= x"}`,
		`{"size": true}`,
		`{"model": 3}`,
		`{"model": ""}`,
		`{"model": "   "}`,
		`{"model": "<or>"}`,
		`{"model": "x <or> y"}`,
		`{"rotational": "maybe"}`,
		`{"rotational": 2}`,
		`{"size": "<range-in> [1 x]"}`,
		`{"size": "<range-in> (1 2 3)"}`,
		`{"serial": [1]}`,
	} {
		t.Run(in, func(t *testing.T) {
			var raw map[string]any
			if err := json.Unmarshal([]byte(in), &raw); err != nil {
				t.Fatal(err)
			}
			h, err := Parse(raw)
			if !errors.Is(err, ErrInvalidHints) {
				t.Errorf("Parse(%s) = %v, %v, want ErrInvalidHints", in, h, err)
			}
		})
	}
}

func TestSelectDell(t *testing.T) {
	tests := []struct {
		name  string
		hints string
		skip  []string
		want  string
		err   error
	}{
		{"no hints smallest", `{}`, nil, "/dev/sda", nil},
		// Sizes compare in fractional GiB, as in Ironic: sdb is 1788.5 GiB.
		{"size exact fractional", `{"size": 1788}`, nil, "", ErrNoDevice},
		{"size ge", `{"size": ">= 1000"}`, nil, "/dev/sdb", nil},
		{"size legacy =", `{"size": "= 1000"}`, nil, "/dev/sdb", nil},
		{"size gt", `{"size": "> 1788"}`, nil, "/dev/sdb", nil},
		{"size gt larger", `{"size": "> 1789"}`, nil, "/dev/sdc", nil},
		{"size lt", `{"size": "< 500"}`, nil, "/dev/sda", nil},
		{"size le", `{"size": "<= 447"}`, nil, "", ErrNoDevice},
		{"size ne", `{"size": "!= 447.0"}`, nil, "", ErrInvalidHints},
		{"size or", `{"size": "<or> 3726 <or> 5"}`, nil, "", ErrNoDevice},
		{"model case-insensitive", `{"model": "st4000nm0295"}`, nil, "/dev/sdc", nil},
		{"model in", `{"model": "<in> boss"}`, nil, "/dev/sda", nil},
		{"model with space", `{"model": "DELLBOSS VD"}`, nil, "/dev/sda", nil},
		{"vendor ne", `{"vendor": "s!= dell"}`, nil, "/dev/sdb", nil},
		{"vendor or", `{"vendor": "<or> seagate <or> hgst"}`, nil, "/dev/sdc", nil},
		{"serial", `{"serial": "S455NY0M123456"}`, nil, "/dev/sdb", nil},
		{"wwn", `{"wwn": "0x5000c500b1a2b3c4"}`, nil, "/dev/sdc", nil},
		{"name", `{"name": "/dev/sdc"}`, nil, "/dev/sdc", nil},
		{"hctl", `{"hctl": "0:0:1:0"}`, nil, "/dev/sdb", nil},
		{"by_path", `{"by_path": "/dev/disk/by-path/pci-0000:18:00.0-scsi-0:0:2:0"}`, nil, "/dev/sdc", nil},
		{"rotational", `{"rotational": true}`, nil, "/dev/sdc", nil},
		{"non rotational first", `{"rotational": false}`, nil, "/dev/sda", nil},
		{"all must match", `{"rotational": false, "vendor": "seagate"}`, nil, "", ErrNoDevice},
		{"string lt", `{"name": "s< /dev/sdb"}`, nil, "/dev/sda", nil},
		{"string ge", `{"name": "s>= /dev/sdb"}`, nil, "/dev/sdb", nil},
		{"skip boss", `{}`, []string{`{"model": "<in> boss"}`}, "/dev/sdb", nil},
		{"skip all", `{}`, []string{`{"size": "> 1"}`}, "", ErrNoDevice},
		{"skip with hints", `{"rotational": false}`, []string{`{"name": "/dev/sda"}`}, "/dev/sdb", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw map[string]any
			if err := json.Unmarshal([]byte(tt.hints), &raw); err != nil {
				t.Fatal(err)
			}
			h, err := Parse(raw)
			if err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse(%s) error = %v, want %v", tt.hints, err, tt.err)
				}
				return
			}
			var skip []Hints
			for _, s := range tt.skip {
				skip = append(skip, mustParse(t, s))
			}
			got, err := Select(dellDisks, h, skip, MinDefaultSize)
			if !errors.Is(err, tt.err) || got.Name != tt.want {
				t.Errorf("Select(%s) = %q, %v, want %q, %v", tt.hints, got.Name, err, tt.want, tt.err)
			}
		})
	}
}

func TestSelectDefault(t *testing.T) {
	tests := []struct {
		name  string
		disks []protocol.Disk
		want  string
	}{
		{"skips tiny", []protocol.Disk{{Name: "/dev/sda", Size: 1 * GiB}, {Name: "/dev/sdb", Size: 8 * GiB}, {Name: "/dev/sdc", Size: 16 * GiB}}, "/dev/sdb"},
		{"exactly 4 GiB", []protocol.Disk{{Name: "/dev/sdb", Size: MinDefaultSize}, {Name: "/dev/sda", Size: 5 * GiB}}, "/dev/sdb"},
		{"tie by name", []protocol.Disk{{Name: "/dev/sdb", Size: 8 * GiB}, {Name: "/dev/sda", Size: 8 * GiB}}, "/dev/sda"},
		{"virtio", []protocol.Disk{{Name: "/dev/vda", Size: 20 * GiB, Rotational: true}}, "/dev/vda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(tt.disks, nil, nil, MinDefaultSize)
			if err != nil || got.Name != tt.want {
				t.Errorf("Select() = %q, %v, want %q", got.Name, err, tt.want)
			}
		})
	}
	if _, err := Select([]protocol.Disk{{Name: "/dev/sda", Size: 3 * GiB}}, nil, nil, MinDefaultSize); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Select(3 GiB disk) error = %v, want ErrNoDevice", err)
	}
	vda := protocol.Disk{Name: "/dev/vda", Size: 20 * GiB}
	for _, expr := range []any{float64(20), "== 20", "<or> 10 <or> 20", "<= 20", ">= 20"} {
		h, err := Parse(map[string]any{"size": expr})
		if err != nil || !h.Match(vda) {
			t.Errorf("Parse(size: %v).Match(20 GiB) = false, %v, want true", expr, err)
		}
	}
	// A disk without a serial never matches a serial hint.
	h := Hints{{Name: "serial", Op: "s!=", Values: []string{"x"}}}
	if h.Match(protocol.Disk{Name: "/dev/vda", Size: 20 * GiB}) {
		t.Errorf("Match(disk without serial) = true, want false")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("size", ">= 100")
	f.Add("size", "<or> 1 <or> 2")
	f.Add("model", "<in> foo bar")
	f.Add("serial", "s!= x")
	f.Add("rotational", "true")
	f.Add("name", "<or>")
	f.Fuzz(func(t *testing.T, name, expr string) {
		h, err := Parse(map[string]any{name: expr})
		if err != nil {
			if !errors.Is(err, ErrInvalidHints) {
				t.Fatalf("Parse error %v does not wrap ErrInvalidHints", err)
			}
			return
		}
		for _, x := range h {
			if x.Name != "rotational" && len(x.Values) == 0 {
				t.Fatalf("Parse(%q: %q) gave hint without values: %+v", name, expr, x)
			}
		}
		_ = h.String()
		for _, d := range dellDisks {
			h.Match(d)
		}
	})
}

func TestParseSkip(t *testing.T) {
	var v any
	if err := json.Unmarshal([]byte(`[{"model": "<in> boss"}, {"size": "< 10"}]`), &v); err != nil {
		t.Fatal(err)
	}
	skip, err := ParseSkip(v)
	if err != nil || len(skip) != 2 {
		t.Fatalf("ParseSkip() = %v, %v, want two hint sets", skip, err)
	}
	for _, bad := range []any{"x", []any{"x"}, []any{map[string]any{"colour": "red"}}} {
		if _, err := ParseSkip(bad); !errors.Is(err, ErrInvalidHints) {
			t.Errorf("ParseSkip(%v) error = %v, want ErrInvalidHints", bad, err)
		}
	}
	if skip, err := ParseSkip(nil); skip != nil || err != nil {
		t.Errorf("ParseSkip(nil) = %v, %v, want nil, nil", skip, err)
	}
}
