package protocol

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type exchange struct {
	Dir      string          `json:"dir"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Query    string          `json:"query"`
	ReqJSON  json.RawMessage `json:"req_json"`
	Status   int             `json:"status"`
	RespJSON json.RawMessage `json:"resp_json"`
}

func loadExchanges(t *testing.T) []exchange {
	t.Helper()
	f, err := os.Open("testdata/ironic-21.4-exchanges.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var e exchange
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestRecordedExchanges decodes every message of a real Ironic 21.4 deploy
// and cleaning into the protocol types.
func TestRecordedExchanges(t *testing.T) {
	var sawLookup, sawWrite, sawCleanSteps, sawList bool
	for _, e := range loadExchanges(t) {
		switch {
		case e.Path == "/v1/lookup" && e.Status == 200:
			var lr LookupResponse
			if err := json.Unmarshal(e.RespJSON, &lr); err != nil {
				t.Fatalf("lookup: %v", err)
			}
			if lr.Node.UUID == "" || lr.Config.HeartbeatTimeout != 20 || len(lr.Config.AgentToken) < MinTokenLength {
				t.Errorf("lookup decoded to %+v", lr)
			}
			sawLookup = true
		case strings.HasPrefix(e.Path, "/v1/heartbeat/"):
			var hb HeartbeatRequest
			if err := json.Unmarshal(e.ReqJSON, &hb); err != nil || hb.CallbackURL == "" || hb.AgentToken == "" {
				t.Errorf("heartbeat %s: %+v %v", e.ReqJSON, hb, err)
			}
		case e.Path == "/v1/commands/" && e.Method == "POST":
			var req CommandRequest
			if err := json.Unmarshal(e.ReqJSON, &req); err != nil {
				t.Fatal(err)
			}
			var res CommandResult
			if err := json.Unmarshal(e.RespJSON, &res); err != nil {
				t.Fatal(err)
			}
			_, cmd, ok := req.SplitName()
			if !ok || res.CommandName != cmd {
				t.Errorf("%s answered as %q", req.Name, res.CommandName)
			}
			switch req.Name {
			case "deploy.execute_deploy_step":
				var p ExecuteStepParams
				if err := json.Unmarshal(req.Params, &p); err != nil {
					t.Fatal(err)
				}
				var args WriteImageArgs
				if err := json.Unmarshal(p.Step.Args["image_info"], &args.ImageInfo); err != nil {
					t.Fatal(err)
				}
				if p.Kind != KindDeploy || p.Step.Step != "write_image" || args.ImageInfo.OSHashAlgo != "sha256" || len(args.ImageInfo.URLs) != 1 || p.Version["generic_hardware_manager"] != "1.1" {
					t.Errorf("write_image params decoded to %+v %+v", p, args)
				}
				sawWrite = true
			case "clean.get_clean_steps":
				var r GetStepsResult
				if err := json.Unmarshal(res.CommandResult, &r); err != nil {
					t.Fatal(err)
				}
				if r.Kind != KindClean || len(r.Steps["GenericHardwareManager"]) == 0 {
					t.Errorf("clean steps decoded to %+v", r)
				}
				// Round trip: our encoding decodes to the same value.
				b, _ := json.Marshal(r)
				var r2 GetStepsResult
				if err := json.Unmarshal(b, &r2); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(r, r2); d != "" {
					t.Errorf("steps round trip (-want +got):\n%s", d)
				}
				sawCleanSteps = true
			case "standby.get_partition_uuids":
				var pu PartitionUUIDs
				if err := json.Unmarshal(res.CommandResult, &pu); err != nil || pu.RootUUID == "" {
					t.Errorf("partition uuids %s: %+v %v", res.CommandResult, pu, err)
				}
			}
		case e.Path == "/v1/commands/" && e.Method == "GET":
			var l CommandList
			if err := json.Unmarshal(e.RespJSON, &l); err != nil {
				t.Fatal(err)
			}
			for _, c := range l.Commands {
				if c.CommandName == "execute_clean_step" && c.CommandStatus == StatusSucceeded {
					var r ExecuteStepResult
					if err := json.Unmarshal(c.CommandResult, &r); err != nil {
						t.Fatal(err)
					}
					if r.Kind != KindClean || r.Step.Step != "erase_devices_metadata" {
						t.Errorf("execute result decoded to %+v", r)
					}
					sawList = true
				}
			}
		}
	}
	if !sawLookup || !sawWrite || !sawCleanSteps || !sawList {
		t.Errorf("transcript coverage: lookup %v write %v steps %v list %v", sawLookup, sawWrite, sawCleanSteps, sawList)
	}
}

func TestCommandResultNulls(t *testing.T) {
	b, err := json.Marshal(CommandResult{ID: "x", CommandName: "sync", CommandStatus: StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"x","command_name":"sync","command_status":"SUCCEEDED","command_error":null,"command_result":null}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}

func TestAPIVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    APIVersion
		wantErr bool
	}{
		{"1.82", APIVersion{1, 82}, false},
		{" 1.9 ", APIVersion{1, 9}, false},
		{"1", APIVersion{}, true},
		{"a.b", APIVersion{}, true},
		{"1.-2", APIVersion{}, true},
	}
	for _, tc := range tests {
		got, err := ParseAPIVersion(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseAPIVersion(%q) = %v, %v, want %v (err %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if got := MinVersion(APIVersion{1, 82}, VersionAgentVerifyCA); got != (APIVersion{1, 68}) {
		t.Errorf("MinVersion = %v, want 1.68", got)
	}
	if got := MinVersion(APIVersion{1, 46}, VersionAgentVerifyCA); got.String() != "1.46" {
		t.Errorf("MinVersion = %v, want 1.46", got)
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in     any
		want   bool
		wantOK bool
	}{
		{true, true, true}, {false, false, true}, {float64(1), true, true}, {float64(0), false, true},
		{"Yes", true, true}, {" off ", false, true}, {"T", true, true}, {"0", false, true},
		{"maybe", false, false}, {float64(2), false, false}, {nil, false, false}, {[]any{}, false, false},
	}
	for _, tc := range tests {
		if got, ok := ParseBool(tc.in); got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseBool(%#v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}
