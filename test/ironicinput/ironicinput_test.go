package ironicinput

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// recordedFile holds Ironic 21.4's answers to Cases(), written by record/.
const recordedFile = "testdata/ironic-21.4.jsonl"

func loadRecorded(t *testing.T) []Recorded { return readJSONL[Recorded](t, recordedFile) }

// readJSONL reads a recording: one JSON value per line.
func readJSONL[T any](t *testing.T, file string) []T {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecordedMatchesCases: the recorded table is the answer to the cases
// as they are written now (re-record after changing cases.go).
func TestRecordedMatchesCases(t *testing.T) {
	rec := loadRecorded(t)
	cs := Cases()
	if len(rec) != len(cs) {
		t.Fatalf("%s has %d lines, cases.go %d cases: run record/ again", recordedFile, len(rec), len(cs))
	}
	for i, c := range cs {
		got, _ := json.Marshal(rec[i].Case)
		want, _ := json.Marshal(c)
		if string(got) != string(want) {
			t.Errorf("line %d: recorded %s, case now %s", i+1, got, want)
		}
	}
}

// TestDifferencesNamed: every deliberate difference names a recorded case
// and says why.
func TestDifferencesNamed(t *testing.T) {
	names := map[string]bool{}
	for _, r := range loadRecorded(t) {
		names[r.Name] = true
	}
	for name, d := range Differences {
		if !names[name] {
			t.Errorf("difference %q names no recorded case", name)
		}
		if d.Reason == "" {
			t.Errorf("difference %q has no reason", name)
		}
	}
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range Differences {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("README.md does not list the difference %q", name)
		}
	}
	for _, tb := range recordedTables {
		names := map[string]bool{}
		for _, r := range loadCalls(t, tb.file) {
			names[r.Name] = true
		}
		for name, d := range tb.diffs {
			if !names[name] {
				t.Errorf("difference %q names no call of %s", name, tb.file)
			}
			if d.Reason == "" {
				t.Errorf("difference %q has no reason", name)
			}
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("README.md does not list the difference %q", name)
			}
		}
	}
}

// TestIronicInputRules replays every recorded input against ferric, in the
// recorded order (the fixtures first), and asserts ferric's status and
// message are Ironic's, and that an accepted input stored the values
// Ironic stored (its coercions: "True" → true, upper-case MACs lowered).
// Deliberate differences are in differences.go.
func TestIronicInputRules(t *testing.T) {
	c := harness.Start(t, service.Config{Hostname: "ironicinput", Log: harness.Logger()})
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, r := range loadRecorded(t) {
		got, err := Send(hc, c.URL, r.Case)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		want := r.Ironic
		if d, ok := Differences[r.Name]; ok {
			want = d.Ferric
		}
		if r.Fixture && got.Status >= 300 {
			t.Fatalf("fixture %s: %d %s", r.Name, got.Status, got.Fault)
		}
		if got.Status != want.Status || !sameFault(got.Fault, want.Fault) {
			t.Errorf("%s: %s %s\n ferric %d %q\n ironic %d %q", r.Name, r.Method, r.Path, got.Status, got.Fault, want.Status, want.Fault)
			continue
		}
		if want.Fields != nil && !reflect.DeepEqual(got.Fields, want.Fields) {
			t.Errorf("%s: fields\n ferric %v\n ironic %v", r.Name, got.Fields, want.Fields)
		}
	}
}

// patchList is where Ironic's "Cannot patch" message starts listing the
// fields that can be updated.
const patchList = ". Only the following can be updated: "

// sameFault compares messages; in a "Cannot patch" message ferric may list
// fields of later Ironic releases (it serves their microversions), so the
// fields Ironic 21.4 lists must be there in the same order, others may be
// between them.
func sameFault(got, want string) bool {
	if got == want {
		return true
	}
	gi, wi := strings.Index(got, patchList), strings.Index(want, patchList)
	if gi < 0 || wi < 0 || got[:gi] != want[:wi] {
		return false
	}
	gf := strings.Split(got[gi+len(patchList):], ", ")
	for _, f := range strings.Split(want[wi+len(patchList):], ", ") {
		i := slices.Index(gf, f)
		if i < 0 {
			return false
		}
		gf = gf[i+1:]
	}
	return true
}
