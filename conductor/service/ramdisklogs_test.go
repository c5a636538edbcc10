package service

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor/ramdisklogs"
)

// TestRamdiskLogsAPI: the logs kept under <state-dir>/ramdisk-logs are
// listed and downloaded through GET /v1/nodes/{node}/ramdisk_logs[/{name}]
// by node UUID or name, only with credentials; unknown nodes and
// archives answer Ironic's 404, and another node's archive is not served.
func TestRamdiskLogsAPI(t *testing.T) {
	state := t.TempDir()
	e := startConductor(t, bcrypt.MinCost, func(c *Config) { c.StateDir = state })
	v := []string{"X-OpenStack-Ironic-API-Version", "latest"}
	var nodes []string
	for _, name := range []string{"logs-a", "logs-b"} {
		code, _, b := e.do(t, "POST", e.api+"/v1/nodes", "good", `{"driver":"fake-hardware","name":"`+name+`"}`, v...)
		var n struct{ UUID string }
		if code != http.StatusCreated || json.Unmarshal(b, &n) != nil {
			t.Fatalf("create node: %d %s", code, b)
		}
		nodes = append(nodes, n.UUID)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("the agent's log"))
	zw.Close()
	st := &ramdisklogs.Store{Dir: filepath.Join(state, "ramdisk-logs")}
	ent, err := st.Save(ramdisklogs.Meta{NodeUUID: nodes[0], NodeName: "logs-a", Label: "deploy"}, gz.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Save(ramdisklogs.Meta{NodeUUID: nodes[1], NodeName: "logs-b", Label: "cleaning"}, gz.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	list := e.api + "/v1/nodes/logs-a/ramdisk_logs"
	if code, _, _ := e.do(t, "GET", list, "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET %s without credentials = %d, want 401", list, code)
	}
	if code, _, _ := e.do(t, "GET", list+"/"+ent.Name, "", ""); code != http.StatusUnauthorized {
		t.Errorf("download without credentials = %d, want 401", code)
	}
	for _, ident := range []string{"logs-a", nodes[0]} {
		code, _, b := e.do(t, "GET", e.api+"/v1/nodes/"+ident+"/ramdisk_logs", "good", "")
		var got struct {
			RamdiskLogs []struct {
				Name     string
				NodeUUID string `json:"node_uuid"`
				Size     int64
				Links    []struct{ Href string }
			} `json:"ramdisk_logs"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &got) != nil || len(got.RamdiskLogs) != 1 {
			t.Fatalf("GET ramdisk_logs of %s = %d %s, want 200 with one archive", ident, code, b)
		}
		r := got.RamdiskLogs[0]
		if r.NodeUUID != nodes[0] || r.Size != int64(gz.Len()) || len(r.Links) != 1 {
			t.Errorf("listed %+v, want node %s size %d", r, nodes[0], gz.Len())
		}
	}
	code, hdr, b := e.do(t, "GET", list+"/"+ent.Name, "good", "")
	if code != http.StatusOK || !bytes.Equal(b, gz.Bytes()) || hdr.Get("Content-Type") != "application/gzip" {
		t.Errorf("download = %d %q (%d bytes), want 200 application/gzip with the archive", code, hdr.Get("Content-Type"), len(b))
	}
	for _, c := range []struct{ url, want string }{
		{list + "/" + other.Name, "Ramdisk logs " + other.Name + " of node " + nodes[0] + " could not be found."},
		{list + "/..%2Fferric.db", "could not be found"},
		{e.api + "/v1/nodes/no-such-node/ramdisk_logs", "Node no-such-node could not be found."},
	} {
		code, _, b := e.do(t, "GET", c.url, "good", "")
		if code != http.StatusNotFound || !bytes.Contains(b, []byte(c.want)) {
			t.Errorf("GET %s = %d %s, want 404 with %q", c.url, code, b, c.want)
		}
	}
}
