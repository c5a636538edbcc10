package hints

import (
	"encoding/json"
	"testing"

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
	}
	for _, tc := range tests {
		t.Run(tc.hints, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.hints), &m); err != nil {
				t.Fatal(err)
			}
			h, err := FromMap(m)
			var d protocol.Disk
			if err == nil {
				d, err = Select(disks, h, MinDefaultSize)
			}
			if (err != nil) != tc.wantErr || d.Name != tc.want {
				t.Errorf("Select(%s) = %q, %v; want %q (err %v)", tc.hints, d.Name, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSelectTies(t *testing.T) {
	d, err := Select([]protocol.Disk{{Name: "/dev/vdb", Size: 8 << 30}, {Name: "/dev/vda", Size: 8 << 30}, {Name: "/dev/vdc", Size: 1 << 30}}, nil, MinDefaultSize)
	if err != nil || d.Name != "/dev/vda" {
		t.Errorf("Select = %q, %v; want /dev/vda", d.Name, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{">= 20", "<range-in> (1 2]", "<or> a <or> b", "s== x", "<in> y", "<all-in> a b", "", "<range-in> [", "= 3"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, expr string, numeric bool) {
		m, err := Parse(expr, numeric)
		if err != nil {
			return
		}
		if len(m.Args) == 0 {
			t.Fatalf("Parse(%q) = %+v without operands", expr, m)
		}
		m.Match("20")
		m.Match(expr)
	})
}
