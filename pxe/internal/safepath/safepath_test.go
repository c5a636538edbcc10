package safepath

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		want string // "" means refused
	}{
		{"undionly.kpxe", "undionly.kpxe"},
		{"efi/snponly.efi", "efi/snponly.efi"},
		{"./a//b/./c", "a/b/c"},
		{"a/", "a"},
		{"", ""},
		{".", ""},
		{"./", ""},
		{"..", ""},
		{"../etc/passwd", ""},
		{"a/../../etc/passwd", ""},
		{"a/../b", ""},
		{"/etc/passwd", ""},
		{"//etc/passwd", ""},
		{`..\..\windows`, ""},
		{"a\x00b", ""},
		{"a\nb", ""},
		{"\xff", ""},
		{strings.Repeat("a", MaxLen+1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Clean(tc.name)
			if tc.want == "" {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("Clean(%q) = %q, %v, want ErrRefused", tc.name, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Clean(%q) = %q, %v, want %q", tc.name, got, err, tc.want)
			}
		})
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "a/b/c", "../x", "/abs", "a/./b", "a/..", "..\\x", "a\x00", "...", "a/.../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := Clean(name)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Clean(%q) error %v does not wrap ErrRefused", name, err)
			}
			return
		}
		if !filepath.IsLocal(got) {
			t.Fatalf("Clean(%q) = %q, which is not local", name, got)
		}
		for _, el := range strings.Split(got, "/") {
			if el == ".." || el == "." || el == "" {
				t.Fatalf("Clean(%q) = %q has element %q", name, got, el)
			}
		}
		if again, err := Clean(got); err != nil || again != got {
			t.Fatalf("Clean(Clean(%q)) = %q, %v, want %q", name, again, err, got)
		}
	})
}
