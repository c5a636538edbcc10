package cmdline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"ro quiet ipa-api-url=http://10.0.0.1:6385 BOOTIF=01-52-54-00-aa-bb-01\n",
			map[string]string{"ro": "", "quiet": "", "ipa-api-url": "http://10.0.0.1:6385", "BOOTIF": "01-52-54-00-aa-bb-01"}},
		{`a="x y" b=c=d  a2="" "q r"=1`, map[string]string{"a": "x y", "b": "c=d", "a2": "", "q r": "1"}},
		{"x=1 x=2", map[string]string{"x": "2"}},
	}
	for _, tc := range tests {
		if d := cmp.Diff(tc.want, Parse(tc.in)); d != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, d)
		}
	}
}

func TestFromMap(t *testing.T) {
	yes := true
	tests := []struct {
		in      string
		want    Params
		wantErr bool
	}{
		{"ipa-api-url=http://a:6385/,https://b:6385 BOOTIF=01-52-54-00-AA-BB-01 ipa-insecure=1 ipa-enable-auto-tls=true ipa-advertise-host=10.0.0.5 ipa-advertise-port=9998",
			Params{APIURLs: []string{"http://a:6385", "https://b:6385"}, BootIF: "52:54:00:aa:bb:01", Insecure: true, EnableAutoTLS: &yes, AdvertiseHost: "10.0.0.5", AdvertisePort: 9998}, false},
		{"BOOTIF=52:54:00:aa:bb:02 ipa-debug", Params{BootIF: "52:54:00:aa:bb:02", Debug: true}, false},
		{"boot_method=vmedia ipa-api-url=http://a:6385", Params{APIURLs: []string{"http://a:6385"}, BootMethod: "vmedia"}, false},
		{"BOOTIF=nope", Params{}, true},
		{"ipa-insecure=maybe", Params{}, true},
		{"ipa-advertise-port=0", Params{}, true},
	}
	for _, tc := range tests {
		got, err := FromMap(Parse(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("FromMap(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil {
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("FromMap(%q) (-want +got):\n%s", tc.in, d)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a=b", `x="y z" q`, "BOOTIF=01-aa-bb-cc-dd-ee-ff ipa-api-url=http://h", `"=`, "ipa-advertise-port=99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := Parse(s)
		for k := range m {
			if k == "" {
				t.Fatalf("Parse(%q) produced an empty key", s)
			}
		}
		FromMap(m)
	})
}
