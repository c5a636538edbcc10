//go:build linux

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSHA512Crypt checks the hash against the vectors of the SHA-crypt
// specification and, when openssl is there, against `openssl passwd -6`.
func TestSHA512Crypt(t *testing.T) {
	for _, tc := range []struct{ pass, salt, want string }{
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"hello", "abc", "$6$abc$34O8oRzThM7onc3iRQAcdWBv2H/sMGJlnsnG6uIkasTEvQkG9apXR/oBhPpqIepkul8wg.bf4wxoel67eJND./"},
	} {
		if got := sha512Crypt(tc.pass, tc.salt); got != tc.want {
			t.Errorf("sha512Crypt(%q, %q) = %s, want %s", tc.pass, tc.salt, got, tc.want)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: the spec's vectors only")
	}
	for _, pass := range []string{"x", strings.Repeat("long password ", 10), "ünïcødé"} {
		salt := newSalt()
		out, err := exec.Command("openssl", "passwd", "-6", "-salt", salt, pass).Output()
		if err != nil {
			t.Fatal(err)
		}
		if want, got := strings.TrimSpace(string(out)), sha512Crypt(pass, salt); got != want {
			t.Errorf("sha512Crypt(%q, %q) = %s, openssl says %s", pass, salt, got, want)
		}
	}
}
