package ironichttp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestErrorBody(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"client fault", Errorf(400, "bad %s", "x"), `{"faultcode":"Client","faultstring":"bad x","debuginfo":null}`},
		{"server fault", Errorf(500, "boom"), `{"faultcode":"Server","faultstring":"boom","debuginfo":null}`},
		{"plain", &Error{Code: 404, Msg: "", Plain: true}, `{"code":404,"description":"","title":"Not Found"}`},
		{"long message cut", Errorf(400, "%s", strings.Repeat("é", 600)), `{"faultcode":"Client","faultstring":"` + strings.Repeat("é", 512) + `...","debuginfo":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Body()["error_message"]; got != tt.want {
				t.Errorf("error_message = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in     string
		want   bool
		wantOK bool
	}{
		{"true", true, true}, {"True", true, true}, {"on", true, true}, {"yes", true, true},
		{"1", true, true}, {"t", true, true}, {"Y", true, true}, {" yes ", true, true},
		{"false", false, true}, {"off", false, true}, {"no", false, true}, {"0", false, true},
		{"f", false, true}, {"N", false, true},
		{"", false, false}, {"2", false, false}, {"truthy", false, false}, {"enabled", false, false},
	}
	for _, tt := range tests {
		if got, ok := ParseBool(tt.in); got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"52:54:00:AB:cd:01", "52:54:00:ab:cd:01"},
		{" 52-54-00-ab-cd-01 ", "52:54:00:ab:cd:01"},
		{"5254.00ab.cd01", ""},
		{"52:54:00:ab:cd", ""},
		{"zz:54:00:ab:cd:01", ""},
	}
	for _, tt := range tests {
		got, ok := NormalizeMAC(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestTime(t *testing.T) {
	ts := time.Date(2026, 12, 5, 22, 50, 1, 500, time.FixedZone("x", 3600))
	if got := Time(ts); got != "2026-12-05T21:50:01+00:00" {
		t.Errorf("Time = %s", got)
	}
}

// TestBaseURL asks a real server what base URL each request gets.
func TestBaseURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, BaseURL(r))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name   string
		header map[string]string
		want   string
	}{
		{"direct", nil, "http://" + host},
		{"proxy says https", map[string]string{"X-Forwarded-Proto": "HTTPS"}, "https://" + host},
		{"last proxy wins", map[string]string{"X-Forwarded-Proto": "https, http"}, "http://" + host},
		{"unknown proto", map[string]string{"X-Forwarded-Proto": "gopher"}, "http://" + host},
		{"ssl on", map[string]string{"X-Forwarded-Ssl": "on"}, "https://" + host},
		{"url scheme", map[string]string{"X-Url-Scheme": "https"}, "https://" + host},
		{"host header", map[string]string{"Host": "ironic.example:6385"}, "http://ironic.example:6385"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tt.want {
				t.Errorf("BaseURL = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestSchemeUntrustedPeer(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "203.0.113.7:4000"
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := Scheme(r); got != "http" {
		t.Errorf("Scheme from a public peer = %s, want http (its headers are not trusted)", got)
	}
}

func doc(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPatchAPI(t *testing.T) {
	const start = `{"extra":{"a":1,"l":[1,2]},"name":"n"}`
	tests := []struct {
		name, patch, want, err string
	}{
		{"add nested", `[{"op":"add","path":"/extra/b","value":"x"}]`, `{"extra":{"a":1,"b":"x","l":[1,2]},"name":"n"}`, ""},
		{"replace", `[{"op":"replace","path":"/name","value":"m"}]`, `{"extra":{"a":1,"l":[1,2]},"name":"m"}`, ""},
		{"remove", `[{"op":"remove","path":"/extra/a"}]`, `{"extra":{"l":[1,2]},"name":"n"}`, ""},
		{"append to list", `[{"op":"add","path":"/extra/l/-","value":3}]`, `{"extra":{"a":1,"l":[1,2,3]},"name":"n"}`, ""},
		{"insert in list", `[{"op":"add","path":"/extra/l/0","value":0}]`, `{"extra":{"a":1,"l":[0,1,2]},"name":"n"}`, ""},
		{"remove from list", `[{"op":"remove","path":"/extra/l/1"}]`, `{"extra":{"a":1,"l":[1]},"name":"n"}`, ""},
		{"remove missing", `[{"op":"remove","path":"/extra/zz"}]`, "", `Couldn't apply patch '{'op': 'remove', 'path': '/extra/zz'}'. Reason: can't remove a non-existent object 'zz'`},
		{"replace missing", `[{"op":"replace","path":"/extra/zz","value":1}]`, "", `Reason: can't replace a non-existent object 'zz'`},
		{"missing parent", `[{"op":"add","path":"/nope/x","value":1}]`, "", `Reason: can't resolve path /nope/x: member 'nope' not found`},
		{"index out of range", `[{"op":"add","path":"/extra/l/9","value":1}]`, "", `Reason: index '9' out of range`},
		{"bad op", `[{"op":"move","path":"/name"}]`, "", `Schema error for patch: 'move' is not one of ['add', 'replace', 'remove']`},
		{"not a list", `{}`, "", `Schema error for patch: {} is not of type 'array'`},
		{"no value", `[{"op":"add","path":"/name"}]`, "", `does not contain a 'value' member`},
		{"bad path", `[{"op":"add","path":"/a b","value":1}]`, "", `does not match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := doc(t, start)
			ops, perr := ParsePatch([]byte(tt.patch))
			if perr == nil {
				perr = ApplyPatch(d, ops)
			}
			if tt.err != "" {
				if perr == nil || perr.Code != 400 || !strings.Contains(perr.Msg, tt.err) {
					t.Fatalf("error = %v, want 400 containing %q", perr, tt.err)
				}
				return
			}
			if perr != nil {
				t.Fatal(perr)
			}
			if got, _ := json.Marshal(d); string(got) != tt.want {
				t.Errorf("doc = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestApplyRules(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want string
		fail bool
	}{
		{"add creates parents", []Op{{Op: "add", Path: "/properties/capabilities/boot", Value: "uefi"}}, `{"name":"n","properties":{"capabilities":{"boot":"uefi"}}}`, false},
		{"escaped pointer", []Op{{Op: "add", Path: "/a~1b", Value: 1}}, `{"a/b":1,"name":"n"}`, false},
		{"test passes", []Op{{Op: "test", Path: "/name", Value: "n"}}, `{"name":"n"}`, false},
		{"test fails", []Op{{Op: "test", Path: "/name", Value: "m"}}, "", true},
		{"replace needs the field", []Op{{Op: "replace", Path: "/x/y", Value: 1}}, "", true},
		{"root", []Op{{Op: "add", Path: "/", Value: 1}}, "", true},
		{"unknown op", []Op{{Op: "copy", Path: "/name"}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Apply(doc(t, `{"name":"n"}`), tt.ops)
			if tt.fail {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(d); string(got) != tt.want {
				t.Errorf("doc = %s, want %s", got, tt.want)
			}
		})
	}
}
