package ironicinput

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// Recorded tables of the inspector's and the image API's calls, written by
// record/ from Debian 12's ironic-inspector and glance-api.
const (
	inspectorFile = "testdata/ironic-inspector-11.1.jsonl"
	imageFile     = "testdata/glance-25.1.jsonl"
)

// recordedTables are the recorded files with the calls they answer and
// ferric's deliberate differences.
var recordedTables = []struct {
	file  string
	calls func() []Call
	diffs map[string]Difference
}{
	{inspectorFile, InspectorCalls, InspectorDifferences},
	{imageFile, ImageCalls, ImageDifferences},
}

func loadCalls(t *testing.T, file string) []RecordedCall {
	return readJSONL[RecordedCall](t, file)
}

// TestRecordedCallsMatchCases: each recorded table answers the calls as
// they are written now (re-record with record.sh after changing them).
func TestRecordedCallsMatchCases(t *testing.T) {
	for _, tb := range recordedTables {
		rec := loadCalls(t, tb.file)
		cs := tb.calls()
		if len(rec) != len(cs) {
			t.Errorf("%s has %d lines, the calls are %d: run record.sh again", tb.file, len(rec), len(cs))
			continue
		}
		for i, c := range cs {
			got, _ := json.Marshal(rec[i].Call)
			want, _ := json.Marshal(c)
			if string(got) != string(want) {
				t.Errorf("%s line %d: recorded %s, call now %s", tb.file, i+1, got, want)
			}
		}
	}
}

// TestInspectorInputRules replays ironic-inspector 11.1's recorded answers
// against a conductor's inspector API, in the recorded order (the
// fixtures, on the Ironic API and the inspector's, first).
func TestInspectorInputRules(t *testing.T) {
	addr := harness.FreeAddr(t, "127.0.0.1")
	c := harness.Start(t, service.Config{Hostname: "inspectorinput", InspectorListen: addr, Log: harness.Logger()})
	replay(t, Endpoints{Ironic: c.URL, Inspector: "http://" + addr}, loadCalls(t, inspectorFile), InspectorDifferences)
}

// TestImageInputRules replays Glance 25.1's recorded answers against a
// conductor's image API (served under /images).
func TestImageInputRules(t *testing.T) {
	c := harness.Start(t, service.Config{Hostname: "imageinput", Log: harness.Logger()})
	replay(t, Endpoints{Image: c.URL + "/images"}, loadCalls(t, imageFile), ImageDifferences)
}

// replay sends every recorded call and asserts ferric answers the recorded
// status and message, and for an accepted call stores the recorded values;
// diffs are the deliberate differences.
func replay(t *testing.T, eps Endpoints, recs []RecordedCall, diffs map[string]Difference) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, r := range recs {
		got, err := SendCall(hc, eps, r.Call)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		want := r.Real
		if d, ok := diffs[r.Name]; ok {
			want = d.Ferric
			if d.Summary {
				want = r.Real
				want.Fault = summary(want.Fault)
			}
		}
		if r.Fixture && got.Status >= 300 {
			t.Fatalf("fixture %s: %d %s", r.Name, got.Status, got.Fault)
		}
		if got.Status != want.Status || got.Fault != want.Fault {
			t.Errorf("%s: %s %s\n ferric %d %q\n real   %d %q", r.Name, r.Method, r.Path, got.Status, got.Fault, want.Status, want.Fault)
			continue
		}
		if want.Fields != nil && !reflect.DeepEqual(got.Fields, want.Fields) {
			t.Errorf("%s: fields\n ferric %v\n real   %v", r.Name, got.Fields, want.Fields)
		}
	}
}
