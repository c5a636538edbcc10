package main

import (
	"testing"

	"github.com/ferric-metal/ferric/ipa/internal/cmdline"
)

func TestIPv6API(t *testing.T) {
	cases := []struct {
		cmdline string
		want    bool
		apiURL  string
	}{
		{"ipa-api-url=http://[fd00::1]:6385 BOOTIF=01-52-54-00-00-00-01", true, "http://[fd00::1]:6385"},
		{"ipa-api-url=http://[fe80::1%25eth0]:6385", true, "http://[fe80::1%25eth0]:6385"},
		{"ipa-api-url=https://[2001:db8::5]/,http://10.0.0.1:6385", true, "https://[2001:db8::5]"},
		{"ipa-inspection-callback-url=http://[fd00::1]:6385/v1/continue_inspection", true, ""},
		{"ipa-api-url=http://10.99.0.1:6385", false, "http://10.99.0.1:6385"},
		{"ipa-api-url=http://[::ffff:10.0.0.1]:6385", false, "http://[::ffff:10.0.0.1]:6385"},
		{"ipa-api-url=http://conductor.example:6385", false, "http://conductor.example:6385"},
		{"", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.cmdline, func(t *testing.T) {
			p, err := cmdline.FromMap(cmdline.Parse(tc.cmdline))
			if err != nil {
				t.Fatal(err)
			}
			if got := ipv6API(p); got != tc.want {
				t.Errorf("ipv6API = %v, want %v", got, tc.want)
			}
			if tc.apiURL != "" && (len(p.APIURLs) == 0 || p.APIURLs[0] != tc.apiURL) {
				t.Errorf("APIURLs = %q, want %q first", p.APIURLs, tc.apiURL)
			}
		})
	}
}
