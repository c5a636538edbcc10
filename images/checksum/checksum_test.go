package checksum

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var (
	payload   = []byte("ferric image bytes\n")
	md5Hex    = hexOf(md5.Sum(payload))
	sha256Hex = hexOf(sha256.Sum256(payload))
	sha512Hex = hexOf(sha512.Sum512(payload))
)

func hexOf[T [16]byte | [32]byte | [64]byte](b T) string {
	switch v := any(b).(type) {
	case [16]byte:
		return hex.EncodeToString(v[:])
	case [32]byte:
		return hex.EncodeToString(v[:])
	case [64]byte:
		return hex.EncodeToString(v[:])
	}
	return ""
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		algo string
		size int
		ok   bool
	}{
		{"md5", 16, true}, {"SHA1", 20, true}, {"sha256", 32, true}, {"SHA-512", 64, true},
		{"sha3_256", 0, false}, {"", 0, false},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			h, err := New(tc.algo)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%q) error = %v, want ok=%v", tc.algo, err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("New(%q) = %v, want ErrUnsupported", tc.algo, err)
				}
				return
			}
			if h.Size() != tc.size {
				t.Errorf("New(%q).Size() = %d, want %d", tc.algo, h.Size(), tc.size)
			}
		})
	}
}

func TestResolveInline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    Spec
		want    string
		wantErr error
	}{
		{"os_hash", Spec{OSHashAlgo: "sha512", OSHashValue: sha512Hex, Checksum: md5Hex}, "sha512:" + sha512Hex, nil},
		{"os_hash upper", Spec{OSHashAlgo: "SHA256", OSHashValue: strings.ToUpper(sha256Hex)}, "sha256:" + sha256Hex, nil},
		{"legacy md5", Spec{Checksum: md5Hex}, "md5:" + md5Hex, nil},
		{"legacy sha256 by length", Spec{Checksum: sha256Hex}, "sha256:" + sha256Hex, nil},
		{"legacy sha512 by length", Spec{Checksum: " " + sha512Hex + "\n"}, "sha512:" + sha512Hex, nil},
		{"algo prefix", Spec{Checksum: "sha256:" + sha256Hex}, "sha256:" + sha256Hex, nil},
		{"md5 disabled", Spec{Checksum: md5Hex, DisableMD5: true}, "", ErrMD5Disabled},
		{"bad length", Spec{Checksum: "abcd"}, "", ErrUnsupported},
		{"unknown algo", Spec{OSHashAlgo: "whirlpool", OSHashValue: "aa"}, "", ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), nil, tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() error = %v", err)
			}
			if got.String() != tc.want {
				t.Errorf("Resolve() = %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := Resolve(context.Background(), nil, Spec{}); err == nil {
		t.Error("Resolve(empty) = nil error, want error")
	}
	if _, err := Resolve(context.Background(), nil, Spec{OSHashAlgo: "sha256", OSHashValue: md5Hex}); err == nil {
		t.Error("Resolve(sha256 with md5-length value) = nil error, want error")
	}
}

func TestParseFile(t *testing.T) {
	const img = "http://example.test/images/focal.qcow2?token=x"
	other := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, file, url, want string
		wantErr               bool
	}{
		{"bare digest", sha256Hex + "\n", img, "sha256:" + sha256Hex, false},
		{"gnu text", other + "  other.img\n" + sha256Hex + "  focal.qcow2\n", img, "sha256:" + sha256Hex, false},
		{"gnu binary star", other + " *other.img\n" + sha512Hex + " *focal.qcow2\n", img, "sha512:" + sha512Hex, false},
		{"dot slash", "# comment\n" + other + "  ./other.img\r\n" + md5Hex + "  ./focal.qcow2\r\n", img, "md5:" + md5Hex, false},
		{"path with dirs", other + "  x/other.img\n" + sha256Hex + "  images/focal.qcow2\n", img, "sha256:" + sha256Hex, false},
		{"full url", other + "  focal.qcow2\n" + sha256Hex + "  " + img + "\n", img, "sha256:" + sha256Hex, false},
		{"bsd tag", "SHA256 (other.img) = " + other + "\nSHA256 (focal.qcow2) = " + sha256Hex + "\n", img, "sha256:" + sha256Hex, false},
		{"single entry other name", sha256Hex + "  renamed.qcow2\n", img, "sha256:" + sha256Hex, false},
		{"name with spaces", other + "  a.img\n" + sha256Hex + "  my image.qcow2\n", "http://h/my%20image.qcow2", "sha256:" + sha256Hex, false},
		{"no match", other + "  a.img\n" + sha256Hex + "  b.img\n", img, "", true},
		{"empty", "# nothing\n\n", img, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFile([]byte(tc.file), tc.url)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseFile() = %s, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFile() error = %v", err)
			}
			if got.String() != tc.want {
				t.Errorf("ParseFile() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFetchOverHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/SHA256SUMS", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("1", 64)+"  other.img\n"+sha256Hex+" *disk.raw\n")
	})
	mux.HandleFunc("/missing", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	got, err := Resolve(ctx, srv.Client(), Spec{Checksum: srv.URL + "/SHA256SUMS", ImageURL: srv.URL + "/disk.raw"})
	if err != nil {
		t.Fatalf("Resolve(url) error = %v", err)
	}
	if got.String() != "sha256:"+sha256Hex {
		t.Errorf("Resolve(url) = %s, want sha256:%s", got, sha256Hex)
	}
	// os_hash_value may name the checksum file too (metal3's checksumType
	// with a checksum URL), as IPA accepts; its digest must be os_hash_algo's.
	got, err = Resolve(ctx, srv.Client(), Spec{OSHashAlgo: "sha256", OSHashValue: srv.URL + "/SHA256SUMS", ImageURL: srv.URL + "/disk.raw"})
	if err != nil || got.String() != "sha256:"+sha256Hex {
		t.Errorf("Resolve(os_hash_value url) = %s, %v; want sha256:%s", got, err, sha256Hex)
	}
	if _, err := Resolve(ctx, srv.Client(), Spec{OSHashAlgo: "sha512", OSHashValue: srv.URL + "/SHA256SUMS", ImageURL: srv.URL + "/disk.raw"}); err == nil || !strings.Contains(err.Error(), "os_hash_algo is sha512") {
		t.Errorf("Resolve(sha512 os_hash_value url to a sha256 file) error = %v, want the mismatch named", err)
	}
	if _, err := Resolve(ctx, srv.Client(), Spec{Checksum: srv.URL + "/missing", ImageURL: srv.URL + "/disk.raw"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Resolve(404 url) error = %v, want HTTP 404", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Fetch(cctx, srv.Client(), srv.URL+"/SHA256SUMS", "disk.raw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch(cancelled) error = %v, want context.Canceled", err)
	}
}

func TestVerifier(t *testing.T) {
	for _, tc := range []struct {
		name string
		exp  Expected
		data []byte
		ok   bool
	}{
		{"sha256 ok", Expected{Algorithm: SHA256, Value: sha256Hex}, payload, true},
		{"md5 ok", Expected{Algorithm: MD5, Value: md5Hex}, payload, true},
		{"sha512 mismatch", Expected{Algorithm: SHA512, Value: sha512Hex, Source: "os_hash_value"}, []byte("tampered"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.exp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			if v.Written() != int64(len(tc.data)) {
				t.Errorf("Written() = %d, want %d", v.Written(), len(tc.data))
			}
			err = v.Verify()
			if tc.ok != (err == nil) {
				t.Fatalf("Verify() = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrMismatch) {
					t.Errorf("Verify() = %v, want ErrMismatch", err)
				}
				want := "checksum: sha512 of image is "
				if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "expected "+sha512Hex+" (from os_hash_value)") {
					t.Errorf("Verify() message = %q", err)
				}
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(sha256Hex+"  disk.img\n"), "http://h/disk.img")
	f.Add([]byte("SHA512 (disk.img) = "+sha512Hex+"\n"), "disk.img")
	f.Add([]byte("# c\n"+md5Hex+" *./a b\r\n"), "http://h/a%20b?x=1")
	f.Add([]byte(" ( ) = \n*\n"), "::")
	f.Fuzz(func(t *testing.T, data []byte, u string) {
		e, err := ParseFile(data, u)
		if err != nil {
			return
		}
		h, herr := New(e.Algorithm)
		if herr != nil {
			t.Fatalf("ParseFile returned unknown algorithm %q", e.Algorithm)
		}
		if len(e.Value) != 2*h.Size() || !isHex(e.Value) {
			t.Fatalf("ParseFile returned bad digest %q for %s", e.Value, e.Algorithm)
		}
	})
}
