package redfish

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestVolumes(t *testing.T) {
	const gib = int64(1) << 30
	disks := []Disk{{Size: 10 * gib}, {Size: 10 * gib}, {Size: 10 * gib}, {Size: 20 * gib}}
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": &nopMachine{}, "2": &nopMachine{}},
		Hardware: map[string]Hardware{"1": {Disks: disks}, "2": {Disks: disks, RAIDTypes: []string{"RAID0", "RAID1"}}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	vols := hs.URL + "/redfish/v1/Systems/1/Storage/1/Volumes"
	drive := func(i string) string { return `{"@odata.id":"/redfish/v1/Systems/1/Storage/1/Drives/` + i + `"}` }
	tests := []struct {
		name, method, url, body string
		want                    int
		wantMsg                 string
	}{
		{"raid1 on two drives, 5 GiB", "POST", vols, `{"RAIDType":"RAID1","CapacityBytes":5368709120,"Links":{"Drives":[` + drive("0") + `,` + drive("1") + `]}}`, 201, ""},
		{"drive in use", "POST", vols, `{"RAIDType":"RAID0","Links":{"Drives":[` + drive("1") + `]}}`, 400, "member of volume 1"},
		{"raid5 needs three drives", "POST", vols, `{"RAIDType":"RAID5","Links":{"Drives":[` + drive("2") + `,` + drive("3") + `]}}`, 400, "RAID5 needs from 3 to 32 drives; 2 were given"},
		{"raid1 too large", "POST", vols, `{"RAIDType":"RAID1","CapacityBytes":10737418241,"Links":{"Drives":[` + drive("2") + `,` + drive("3") + `]}}`, 400, "hold at most 10737418240 bytes"},
		{"unknown RAID type", "POST", vols, `{"RAIDType":"RAID7","Links":{"Drives":[` + drive("2") + `]}}`, 400, "not in the list of acceptable values"},
		{"no RAID type", "POST", vols, `{"Links":{"Drives":[` + drive("2") + `]}}`, 400, "RAIDType is a required property"},
		{"no drives", "POST", vols, `{"RAIDType":"RAID0"}`, 400, "Links/Drives is a required property"},
		{"unknown drive", "POST", vols, `{"RAIDType":"RAID0","Links":{"Drives":[` + drive("9") + `]}}`, 400, "was not found"},
		{"controller without RAID5", "POST", hs.URL + "/redfish/v1/Systems/2/Storage/1/Volumes",
			`{"RAIDType":"RAID5","Links":{"Drives":[{"@odata.id":"/redfish/v1/Systems/2/Storage/1/Drives/0"},{"@odata.id":"/redfish/v1/Systems/2/Storage/1/Drives/1"},{"@odata.id":"/redfish/v1/Systems/2/Storage/1/Drives/2"}]}}`,
			400, "RAID5 for the property RAIDType is not in the list"},
		{"raid0 MAX on the rest", "POST", vols, `{"RAIDType":"RAID0","Name":"data","Links":{"Drives":[` + drive("2") + `,` + drive("3") + `]}}`, 201, ""},
		{"read a volume", "GET", vols + "/1", "", 200, ""},
		{"delete a volume", "DELETE", vols + "/1", "", 204, ""},
		{"delete it again", "DELETE", vols + "/1", "", 404, ""},
		{"drive free again", "POST", vols, `{"RAIDType":"RAID0","Links":{"Drives":[` + drive("1") + `]}}`, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, tc.url, tc.body)
			if code != tc.want {
				t.Fatalf("%s %s = %d (%v), want %d", tc.method, tc.url, code, body, tc.want)
			}
			if tc.wantMsg != "" {
				msg, _ := body["error"].(map[string]any)["message"].(string)
				if !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("error message %q does not contain %q", msg, tc.wantMsg)
				}
			}
		})
	}
	got := srv.Volumes("1")
	want := []Volume{
		{ID: "2", Name: "data", RAIDType: "RAID0", Capacity: 20 * gib, Drives: []int{2, 3}},
		{ID: "3", Name: "Volume 3", RAIDType: "RAID0", Capacity: 10 * gib, Drives: []int{1}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Volumes(1) (-want +got):\n%s", d)
	}
	if v := srv.Volumes("2"); len(v) != 0 {
		t.Errorf("Volumes(2) = %v, want none (every create was refused)", v)
	}
	_, st := do(t, "GET", hs.URL+"/redfish/v1/Systems/1/Storage/1", "")
	ctrl := st["StorageControllers"].([]any)[0].(map[string]any)
	if d := cmp.Diff([]any{"RAID0", "RAID1", "RAID5", "RAID10"}, ctrl["SupportedRAIDTypes"]); d != "" {
		t.Errorf("SupportedRAIDTypes (-want +got):\n%s", d)
	}
	_, dr := do(t, "GET", hs.URL+"/redfish/v1/Systems/1/Storage/1/Drives/3", "")
	if d := cmp.Diff([]any{map[string]any{"@odata.id": "/redfish/v1/Systems/1/Storage/1/Volumes/2"}}, dr["Links"].(map[string]any)["Volumes"]); d != "" {
		t.Errorf("drive 3 Links.Volumes (-want +got):\n%s", d)
	}
}

func TestEventService(t *testing.T) {
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": &nopMachine{}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	subs := hs.URL + "/redfish/v1/EventService/Subscriptions"
	tests := []struct {
		name, method, url, body string
		want                    int
	}{
		{"event service", "GET", hs.URL + "/redfish/v1/EventService", "", 200},
		{"subscribe", "POST", subs, `{"Destination":"https://events.example.com/hook","Context":"bmh","Protocol":"Redfish","EventTypes":["Alert"],"HttpHeaders":[{"X-Token":"t"}]}`, 201},
		{"subscribe with defaults", "POST", subs, `{"Destination":"http://10.0.0.1:8080/"}`, 201},
		{"no destination", "POST", subs, `{"Context":"x"}`, 400},
		{"relative destination", "POST", subs, `{"Destination":"/hook"}`, 400},
		{"ftp destination", "POST", subs, `{"Destination":"ftp://x/"}`, 400},
		{"bad protocol", "POST", subs, `{"Destination":"http://x/","Protocol":"SNMPv2c"}`, 400},
		{"bad event type", "POST", subs, `{"Destination":"http://x/","EventTypes":["Everything"]}`, 400},
		{"list", "GET", subs, "", 200},
		{"read", "GET", subs + "/1", "", 200},
		{"delete", "DELETE", subs + "/1", "", 204},
		{"read deleted", "GET", subs + "/1", "", 404},
		{"patch not allowed", "PATCH", subs + "/2", "{}", 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := do(t, tc.method, tc.url, tc.body); code != tc.want {
				t.Errorf("%s %s = %d (%v), want %d", tc.method, tc.url, code, body, tc.want)
			}
		})
	}
	want := []Subscription{{ID: "2", Destination: "http://10.0.0.1:8080/", Protocol: "Redfish", EventTypes: []string{}}}
	if d := cmp.Diff(want, srv.Subscriptions()); d != "" {
		t.Errorf("Subscriptions() (-want +got):\n%s", d)
	}
	_, list := do(t, "GET", subs, "")
	if list["Members@odata.count"] != float64(1) {
		t.Errorf("Subscriptions collection = %v, want one member", list)
	}
}

// A controller that applies volume operations at the next reset (as an
// iDRAC does): 202 with a task, nothing changes until the system starts,
// a cancelled task never runs.
func TestVolumesOnReset(t *testing.T) {
	const gib = int64(1) << 30
	m := &nopMachine{}
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": m},
		Hardware: map[string]Hardware{"1": {Disks: []Disk{{Size: 10 * gib}, {Size: 10 * gib}, {Size: 10 * gib}}, VolumeApplyTime: "OnReset"}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	vols := hs.URL + "/redfish/v1/Systems/1/Storage/1/Volumes"
	drive := func(i string) string { return `{"@odata.id":"/redfish/v1/Systems/1/Storage/1/Drives/` + i + `"}` }
	_, coll := do(t, "GET", vols, "")
	if got := coll["@Redfish.OperationApplyTimeSupport"].(map[string]any)["SupportedValues"]; cmp.Diff([]any{"OnReset"}, got) != "" {
		t.Errorf("SupportedValues = %v", got)
	}
	code, tk := do(t, "POST", vols, `{"RAIDType":"RAID1","Links":{"Drives":[`+drive("0")+`,`+drive("1")+`]}}`)
	if code != 202 || tk["TaskState"] != "New" {
		t.Fatalf("POST = %d %v, want 202 and a new task", code, tk)
	}
	if code, _ := do(t, "POST", vols, `{"RAIDType":"RAID0","Links":{"Drives":[`+drive("1")+`]}}`); code != 400 {
		t.Errorf("a drive of a pending volume: %d, want 400", code)
	}
	code, tk2 := do(t, "POST", vols, `{"RAIDType":"RAID0","Links":{"Drives":[`+drive("2")+`]}}`)
	if code != 202 {
		t.Fatalf("second POST = %d", code)
	}
	if code, _ := do(t, "DELETE", hs.URL+"/redfish/v1/TaskService/Tasks/"+tk2["Id"].(string), ""); code != 204 {
		t.Errorf("cancel = %d, want 204", code)
	}
	if len(srv.Volumes("1")) != 0 {
		t.Fatalf("volumes before the reset: %v", srv.Volumes("1"))
	}
	if code, _ := do(t, "POST", hs.URL+"/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`); code != 204 {
		t.Fatal("power on failed")
	}
	want := []Volume{{ID: "1", Name: "Volume 1", RAIDType: "RAID1", Capacity: 10 * gib, Drives: []int{0, 1}}}
	if d := cmp.Diff(want, srv.Volumes("1")); d != "" {
		t.Errorf("volumes after the reset (-want +got):\n%s", d)
	}
	if _, got := do(t, "GET", hs.URL+"/redfish/v1/TaskService/Tasks/"+tk["Id"].(string), ""); got["TaskState"] != "Completed" {
		t.Errorf("task after the reset = %v", got)
	}
	if _, got := do(t, "GET", hs.URL+"/redfish/v1/TaskService/Tasks/"+tk2["Id"].(string), ""); got["TaskState"] != "Cancelled" {
		t.Errorf("cancelled task = %v", got)
	}
	// A deletion waits for the reset too; the drives are free for a
	// creation asked for before it.
	if code, _ := do(t, "DELETE", vols+"/1", ""); code != 202 {
		t.Errorf("DELETE = %d, want 202", code)
	}
	if code, _ := do(t, "POST", vols, `{"RAIDType":"RAID0","Name":"big","Links":{"Drives":[`+drive("0")+`,`+drive("1")+`]}}`); code != 202 {
		t.Errorf("a creation on drives pending deletion = %d, want 202", code)
	}
	if code, _ := do(t, "POST", hs.URL+"/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"ForceRestart"}`); code != 204 {
		t.Fatal("restart failed")
	}
	want = []Volume{{ID: "2", Name: "big", RAIDType: "RAID0", Capacity: 20 * gib, Drives: []int{0, 1}}}
	if d := cmp.Diff(want, srv.Volumes("1")); d != "" {
		t.Errorf("volumes after the second reset (-want +got):\n%s", d)
	}
}
