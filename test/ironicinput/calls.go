package ironicinput

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Services a Call is sent to.
const (
	Ironic    = "ironic"
	Inspector = "inspector"
	Image     = "image"
)

// Call is one raw request to one of the services, for the APIs whose inputs
// are not always JSON (the inspector's and the image API's): the body is
// sent as written, with the headers given.
type Call struct {
	Name    string            `json:"name"`
	Service string            `json:"service"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Header  map[string]string `json:"header,omitempty"`
	// Body is sent as written; empty is no body.
	Body string `json:"body,omitempty"`
	// Fixture calls come first and must succeed.
	Fixture bool `json:"fixture,omitempty"`
	// Until makes a fixture wait for its effect.
	Until *Until `json:"until,omitempty"`
}

// Until is what a fixture waits for: GET Path on the same service answers
// 200 and, when Field is set, a body whose Field is Value.
type Until struct {
	Path  string `json:"path"`
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
}

// RecordedCall is one line of a recorded table of Calls: the call and the
// real service's answer.
type RecordedCall struct {
	Call
	Real Answer `json:"real"`
}

// Endpoints are the base URLs (http://host:port, with the path prefix the
// service is mounted under) of the services, by service name.
type Endpoints map[string]string

// untilTimeout bounds a fixture's wait.
const untilTimeout = 60 * time.Second

// SendCall sends c to its service and reads the answer: the status, the
// error message in the service's error shape, and for a success the values
// of the fields the call set (see callFields). A fixture with Until waits
// for its effect.
func SendCall(hc *http.Client, eps Endpoints, c Call) (Answer, error) {
	base, ok := eps[c.Service]
	if !ok {
		return Answer{}, fmt.Errorf("no endpoint for service %q", c.Service)
	}
	status, raw, err := do(hc, base, c.Method, c.Path, c.Header, c.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: status}
	if status >= 400 {
		a.Fault = serviceFault(c.Service, raw)
		return a, nil
	}
	if c.Until != nil {
		if err := wait(hc, base, c); err != nil {
			return Answer{}, err
		}
	}
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return a, nil
	}
	for _, k := range callFields(c) {
		if a.Fields == nil {
			a.Fields = map[string]any{}
		}
		a.Fields[k] = doc[k]
	}
	return a, nil
}

func do(hc *http.Client, base, method, path string, header map[string]string, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// wait polls c.Until until it holds or untilTimeout passes.
func wait(hc *http.Client, base string, c Call) error {
	deadline := time.Now().Add(untilTimeout)
	last := ""
	for time.Now().Before(deadline) {
		status, raw, err := do(hc, base, http.MethodGet, c.Until.Path, c.Header, "")
		if err != nil {
			return err
		}
		last = fmt.Sprintf("%d %s", status, bytes.TrimSpace(raw))
		if status == http.StatusOK {
			if c.Until.Field == "" {
				return nil
			}
			var doc map[string]any
			if json.Unmarshal(raw, &doc) == nil && fmt.Sprint(doc[c.Until.Field]) == c.Until.Value {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s: GET %s did not reach %s=%q in %s (last: %.300s)", c.Name, c.Until.Path, c.Until.Field, c.Until.Value, untilTimeout, last)
}

// callFields are the top-level fields a call sets: the members of a JSON
// object it posts, the first token of the paths a JSON patch touches (an
// "op"/"path" operation or a draft-4 one, {"add": "/path"}). A field the
// answer lacks is recorded as null (a removed property).
func callFields(c Call) []string {
	var body any
	if json.Unmarshal([]byte(c.Body), &body) != nil {
		return nil
	}
	var out []string
	switch b := body.(type) {
	case map[string]any:
		if c.Method == http.MethodPost {
			for k := range b {
				out = append(out, k)
			}
		}
	case []any:
		if c.Method != http.MethodPatch {
			return nil
		}
		for _, op := range b {
			m, _ := op.(map[string]any)
			for _, key := range []string{"path", "add", "remove", "replace"} {
				if p, ok := m[key].(string); ok {
					out = append(out, strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0])
				}
			}
		}
	}
	return out
}

// serviceFault is the message of an error body in the service's shape:
// Ironic's faultstring, ironic-inspector's {"error": {"message": ...}},
// webob's {"message": ...} (the image API); the raw body when it has
// another shape.
func serviceFault(service string, raw []byte) string {
	switch service {
	case Inspector:
		var e struct {
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != nil {
			return e.Error.Message
		}
	case Image:
		var e struct {
			Message *string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Message != nil {
			return *e.Message
		}
	default:
		return fault(raw)
	}
	return strings.TrimSpace(string(raw))
}
