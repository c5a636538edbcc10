package ironicinput

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Answer is what the API said to one Case: the status, the error's
// faultstring, and for a success the values of the fields the request set
// (to see the coercions).
type Answer struct {
	Status int            `json:"status"`
	Fault  string         `json:"fault,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

// Recorded is one line of the recorded table.
type Recorded struct {
	Case
	Ironic Answer `json:"ironic"`
}

// Send sends c to the API at base (http://host:port) and reads the answer.
func Send(hc *http.Client, base string, c Case) (Answer, error) {
	var body io.Reader
	if c.Body != nil {
		b, err := json.Marshal(c.Body)
		if err != nil {
			return Answer{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.Method, base+c.Path, body)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode}
	if resp.StatusCode >= 400 {
		a.Fault = fault(raw)
		return a, nil
	}
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return a, nil
	}
	for _, k := range sentFields(c) {
		if v, ok := doc[k]; ok {
			if a.Fields == nil {
				a.Fields = map[string]any{}
			}
			a.Fields[k] = v
		}
	}
	return a, nil
}

// sentFields are the top-level fields a create sets or a patch touches.
func sentFields(c Case) []string {
	var out []string
	switch b := c.Body.(type) {
	case map[string]any:
		if c.Method == http.MethodPost {
			for k := range b {
				out = append(out, k)
			}
		}
	case []any:
		for _, op := range b {
			if m, ok := op.(map[string]any); ok {
				if p, ok := m["path"].(string); ok {
					out = append(out, strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0])
				}
			}
		}
	}
	return out
}

// fault is the faultstring of Ironic's error body (the JSON string in
// error_message), or the raw body when it has another shape.
func fault(raw []byte) string {
	var env struct {
		ErrorMessage any `json:"error_message"`
	}
	if json.Unmarshal(raw, &env) == nil && env.ErrorMessage != nil {
		var f struct {
			Faultstring string `json:"faultstring"`
			Description string `json:"description"`
		}
		switch em := env.ErrorMessage.(type) {
		case string:
			if json.Unmarshal([]byte(em), &f) == nil {
				if f.Faultstring == "" {
					return f.Description
				}
				return f.Faultstring
			}
			return em
		case map[string]any:
			return fmt.Sprint(em["faultstring"])
		}
	}
	return strings.TrimSpace(string(raw))
}
