package vmedia

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUnpackConfigDrive(t *testing.T) {
	img := append([]byte("CONFIG-DRIVE "), bytes.Repeat([]byte{0, 0xff}, 100)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(img)
	zw.Close()
	b64 := base64.StdEncoding.EncodeToString(gz.Bytes())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/b64":
			// Wrapped lines, as base64(1) writes them.
			for i := 0; i < len(b64); i += 76 {
				w.Write([]byte(b64[i:min(i+76, len(b64))] + "\n"))
			}
		case "/raw":
			w.Write(img)
		case "/gz":
			w.Write(gz.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, value string
		wantErr     string
	}{
		{"base64 of gzip", b64, ""},
		{"url of base64", srv.URL + "/b64", ""},
		{"url of the image", srv.URL + "/raw", ""},
		{"url of the gzip", srv.URL + "/gz", ""},
		{"url missing", srv.URL + "/nope", "404"},
		{"ftp", "ftp://example.invalid/cd", "only http and https"},
		{"not base64", "this is not base64!", "not base64"},
		{"empty gzip", base64.StdEncoding.EncodeToString(func() []byte {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Close()
			return b.Bytes()
		}()), "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unpackConfigDrive(context.Background(), tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Errorf("got %d bytes, want the %d of the image", len(got), len(img))
			}
		})
	}
}
