package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/process"
	"github.com/ferric-metal/ferric/inspector/ruleapi"
)

// Route fuzzing: a fixed number of mutated requests (fixed seed, so a
// failure replays) to every route the API serves, inspection rules
// included. No answer may be a 5xx, and a refused request (4xx) must leave
// the store as it was.
const (
	routeFuzzSeed     = 17
	routeFuzzRequests = 4500
)

// seedBodies are valid or nearly valid bodies of the API's writes, by
// route ("METHOD path" with the route's parameters; "PATCH" for every
// PATCH); the fuzzer mutates them. Routes without seeds get any of them.
var seedBodies = map[string][]string{
	"POST /v1/nodes": {`{"driver":"fake-hardware","name":"fz-new","driver_info":{"ipmi_address":"10.0.0.9"},"properties":{"cpus":4}}`},
	"PATCH": {`[{"op":"add","path":"/extra/a","value":"b"}]`, `[{"op":"replace","path":"/driver_info/x","value":{"y":[1,2]}}]`,
		`[{"op":"remove","path":"/extra/a"}]`, `[{"op":"replace","path":"/name","value":"fz2"}]`, `[{"op":"add","path":"/description","value":"d"}]`},
	"PUT /v1/nodes/:node/states/provision": {`{"target":"manage"}`, `{"target":"clean","clean_steps":[{"interface":"deploy","step":"erase_devices"}]}`,
		`{"target":"active","configdrive":{"user_data":"x"}}`, `{"target":"service","service_steps":[]}`,
		`{"target":"clean","runbook":"CUSTOM_FZRB"}`},
	"PUT /v1/nodes/:node/states/power":           {`{"target":"power on","timeout":10}`},
	"PUT /v1/nodes/:node/management/boot_device": {`{"boot_device":"pxe","persistent":true}`},
	"PUT /v1/nodes/:node/states/boot_mode":       {`{"target":"uefi"}`},
	"PUT /v1/nodes/:node/states/secure_boot":     {`{"target":true}`},
	"PUT /v1/nodes/:node/states/raid":            {`{"logical_disks":[{"size_gb":10,"raid_level":"1"}]}`},
	"PUT /v1/nodes/:node/maintenance":            {`{"reason":"fz"}`},
	"PUT /v1/nodes/:node/traits":                 {`{"traits":["CUSTOM_X"]}`},
	"POST /v1/ports":                             {`{"node_uuid":"%NODE%","address":"52:54:00:aa:bb:cc","pxe_enabled":true,"name":"fzp"}`},
	"POST /v1/portgroups":                        {`{"node_uuid":"%NODE%","name":"fz-pg","address":"52:54:00:aa:bb:cd"}`},
	"POST /v1/chassis":                           {`{"description":"fz chassis","extra":{}}`},
	"POST /v1/allocations":                       {`{"resource_class":"fz","name":"fz-alloc","traits":["CUSTOM_A"],"candidate_nodes":["fz"]}`},
	"POST /v1/deploy_templates":                  {`{"name":"CUSTOM_FZ","steps":[{"interface":"bios","step":"apply_configuration","args":{},"priority":10}]}`},
	"POST /v1/runbooks":                          {`{"name":"CUSTOM_FZR","steps":[{"interface":"power","step":"wait","args":{"seconds":1},"order":1}],"owner":"fz"}`},
	"POST /v1/volume/connectors":                 {`{"node_uuid":"%NODE%","type":"iqn","connector_id":"iqn.fz"}`},
	"POST /v1/volume/targets":                    {`{"node_uuid":"%NODE%","volume_type":"iscsi","volume_id":"v-fz","boot_index":1,"properties":{}}`},
	"POST /v1/events":                            {`{"events":[{"event":"network.bind_port","port_id":"x","mac_address":"52:54:00:00:00:01","status":"ACTIVE"}]}`},
	"POST /v1/heartbeat/:node":                   {`{"callback_url":"http://10.0.0.1:9999","agent_token":"x","agent_version":"9.0"}`},
	"POST /v1/continue_inspection":               {`{"inventory":{"interfaces":[{"name":"eth0","mac_address":"52:54:00:00:00:01"}]}}`},
	"POST /v1/inspection_rules": {`{"actions":[{"op":"set-attribute","args":{"path":"/extra/a","value":1}}],` +
		`"conditions":[{"op":"eq","args":{"value":1,"values":[1]}}],"description":"r"}`},
	"": {`{"node_uuid":"%NODE%"}`, `{"shard":"a"}`, `{"args":{"password":"x"}}`, `{"target":"x"}`},
}

// seedsFor returns the seed bodies of a route.
func seedsFor(method, path string) []string {
	if s := seedBodies[method+" "+path]; s != nil {
		return s
	}
	if s := seedBodies[method]; s != nil {
		return s
	}
	var all []string
	for _, k := range slices.Sorted(maps.Keys(seedBodies)) {
		all = append(all, seedBodies[k]...)
	}
	return all
}

// junk values the mutator puts in place of a JSON value.
var junk = []any{strings.Repeat("x", 40000), "", "bogus", "é\u0000\ufffd", -1.0, 1e308, 0.5, true, nil,
	map[string]any{}, []any{}, []any{nil}, map[string]any{"password": 1.0}, "00000000-0000-0000-0000-000000000000",
	"../../etc/passwd", "%s%n", strings.Repeat("[", 100)}

// pickJunk favours the long string (lengths are what stores refuse).
func pickJunk(rng *rand.Rand) any {
	if rng.Intn(3) == 0 {
		return junk[0]
	}
	return pickJunk(rng)
}

// mutate returns a mutation of a JSON body.
func mutate(rng *rand.Rand, body string) []byte {
	switch rng.Intn(10) {
	case 0: // truncated
		return []byte(body[:rng.Intn(len(body)+1)])
	case 1: // bytes flipped
		b := []byte(body)
		for i := 0; i < 1+rng.Intn(3); i++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		return b
	case 2, 8, 9: // a value replaced by junk, at any depth
		var v any
		if json.Unmarshal([]byte(body), &v) != nil {
			return []byte(body)
		}
		v = replaceValue(rng, v)
		b, _ := json.Marshal(v)
		return b
	case 3: // deep nesting
		d := 50 + rng.Intn(100)
		return []byte(strings.Repeat(`{"a":`, d) + "1" + strings.Repeat("}", d))
	case 4: // not JSON
		return []byte([]string{"", "null", "[]", "{}", "1", `"s"`, "garbage", "{,}", "[1,]"}[rng.Intn(9)])
	case 5: // a key added
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil || m == nil {
			return []byte(body)
		}
		m[[]string{"uuid", "name", "id", "extra", "driver", "x", strings.Repeat("k", 300)}[rng.Intn(7)]] = pickJunk(rng)
		b, _ := json.Marshal(m)
		return b
	}
	return []byte(body) // as is (valid requests exercise the no-5xx side)
}

func replaceValue(rng *rand.Rand, v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 || rng.Intn(4) == 0 {
			return pickJunk(rng)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		k := keys[rng.Intn(len(keys))]
		x[k] = replaceValue(rng, x[k])
		return x
	case []any:
		if len(x) == 0 || rng.Intn(4) == 0 {
			return pickJunk(rng)
		}
		i := rng.Intn(len(x))
		x[i] = replaceValue(rng, x[i])
		return x
	}
	return pickJunk(rng)
}

// storeState is a fingerprint of everything the store holds, by table.
func storeState(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	all := map[string]any{
		"nodes": st.Nodes(nil), "ports": st.Ports(nil), "portgroups": st.Portgroups(nil), "chassis": st.ChassisList(nil),
		"allocations": st.Allocations(nil), "templates": st.DeployTemplates(nil), "connectors": st.VolumeConnectors(nil),
		"targets": st.VolumeTargets(nil),
	}
	rules, err := st.Records(process.RulesTable)
	if err != nil {
		t.Fatal(err)
	}
	all["rules"] = rules
	for _, n := range st.Nodes(nil) {
		h, _ := st.NodeHistory(n.UUID)
		all["history/"+n.UUID] = h
	}
	out := map[string]string{}
	for k, v := range all {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(b)
	}
	return out
}

// changed names the tables that differ.
func changed(a, b map[string]string) []string {
	var out []string
	for k := range a {
		if a[k] != b[k] {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// settle waits until the store stops changing (work a 2xx answer started
// runs in the background: no node locked, the same state three times in a
// row) and returns its state.
func settle(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	prev, same := storeState(t, st), 0
	for i := 0; i < 200 && same < 2; i++ {
		time.Sleep(15 * time.Millisecond)
		cur := storeState(t, st)
		locked := len(st.Nodes(func(n *store.Node) bool { return n.Reservation != nil })) > 0
		if len(changed(cur, prev)) == 0 && !locked {
			same++
		} else {
			same = 0
		}
		prev = cur
	}
	return prev
}

func TestRouteFuzz(t *testing.T) {
	e := newTestEnv(t, nil)
	rm := (&ruleapi.Handler{Rules: process.NewRuleStore(e.st)}).Routes()
	e.srv.MountV1(Version(ruleapi.MinVersion), rm, rm.Routes())
	e.version = "1.96"
	node := e.createNode(map[string]any{"name": "fz", "driver_info": map[string]any{"ipmi_password": "fz-secret"}}).str("uuid")
	e.addSecret("fz-secret")
	ids := map[string][]string{"node": {node, "fz"}}
	create := func(kind, path, body string) {
		r := e.must(201, e.do("POST", path, strings.ReplaceAll(body, "%NODE%", node)), "fixture "+kind)
		ids[kind] = append(ids[kind], r.str("uuid"))
		if n := r.str("name"); n != "" {
			ids[kind] = append(ids[kind], n)
		}
	}
	create("port", "/v1/ports", `{"node_uuid":"%NODE%","address":"52:54:00:12:34:56"}`)
	create("portgroup", "/v1/portgroups", `{"node_uuid":"%NODE%","name":"fzpg"}`)
	create("chassis", "/v1/chassis", `{"description":"c"}`)
	create("allocation", "/v1/allocations", `{"resource_class":"none-matches","name":"fzal"}`)
	create("template", "/v1/deploy_templates", `{"name":"CUSTOM_FZT","steps":[{"interface":"bios","step":"apply_configuration","args":{"settings":[]},"priority":10}]}`)
	create("runbook", "/v1/runbooks", `{"name":"CUSTOM_FZRB","steps":[{"interface":"deploy","step":"erase_devices_metadata","order":0}]}`)
	create("connector", "/v1/volume/connectors", `{"node_uuid":"%NODE%","type":"iqn","connector_id":"iqn.fixture"}`)
	create("target", "/v1/volume/targets", `{"node_uuid":"%NODE%","volume_type":"iscsi","volume_id":"v0","boot_index":0}`)
	create("rule", "/v1/inspection_rules", `{"actions":[{"op":"set-attribute","args":{"path":"/extra/a","value":1}}],"description":"fx"}`)

	type route struct{ method, path string }
	var routes []route
	for _, r := range e.srv.Echo().Routes() {
		if strings.Contains(r.Path, "*") || r.Method == "echo_route_not_found" {
			continue
		}
		if r.Path == "/v1/events/stream" {
			continue // a stream that lasts while the client reads (test/feed tests its input)
		}
		routes = append(routes, route{r.Method, r.Path})
	}
	slices.SortFunc(routes, func(a, b route) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	if len(routes) < 100 {
		t.Fatalf("only %d routes found", len(routes))
	}
	paramKind := map[string]string{":node": "node", ":port": "port", ":portgroup": "portgroup", ":chassis": "chassis",
		":allocation": "allocation", ":template": "template", ":connector": "connector", ":target": "target", ":rule": "rule", ":runbook": "runbook"}
	badIDs := []string{"nope", strings.Repeat("a", 300), "00000000-0000-4000-8000-000000000000", "%2e%2e", "é", "detail"}
	versions := []string{"1.96", "1.96", "1.96", "1.1", "1.31", "1.52", "1.78", "latest", "1.999", "x", ""}
	queries := []string{"", "", "", "?fields=uuid,name,driver_info", "?limit=-1", "?limit=x", "?sort_key=bogus", "?marker=zz",
		"?detail=true&fields=uuid", "?fields=" + strings.Repeat("a,", 200), "?node=fz", "?resource_class=" + strings.Repeat("r", 5000)}

	rng := rand.New(rand.NewSource(routeFuzzSeed))
	state := settle(t, e.st)
	counts := map[int]int{}
	start := time.Now()
	for i := 0; i < routeFuzzRequests; i++ {
		rt := routes[i%len(routes)]
		var path strings.Builder
		for _, seg := range strings.Split(rt.path, "/") {
			if seg == "" {
				continue
			}
			path.WriteByte('/')
			if !strings.HasPrefix(seg, ":") {
				path.WriteString(seg)
				continue
			}
			good := ids[paramKind[seg]]
			// Real ids, but never for a DELETE: the fixtures stay.
			if len(good) > 0 && rt.method != http.MethodDelete && rng.Intn(3) > 0 {
				path.WriteString(good[rng.Intn(len(good))])
			} else if seg == ":method" {
				path.WriteString([]string{"first_method", "bogus", "x"}[rng.Intn(3)])
			} else {
				path.WriteString(badIDs[rng.Intn(len(badIDs))])
			}
		}
		if path.Len() == 0 {
			path.WriteByte('/')
		}
		target := path.String() + queries[rng.Intn(len(queries))]
		var body []byte
		if rt.method == http.MethodPost || rt.method == http.MethodPut || rt.method == http.MethodPatch {
			seeds := seedsFor(rt.method, rt.path)
			body = mutate(rng, strings.ReplaceAll(seeds[rng.Intn(len(seeds))], "%NODE%", node))
		}
		req, err := http.NewRequest(rt.method, e.url+target, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		req.Header.Set(hdrLegacyVersion, versions[rng.Intn(len(versions))])
		req.Header.Set("Content-Type", []string{"application/json", "text/plain", ""}[rng.Intn(3)])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request %d %s %s: %v", i, rt.method, target, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		counts[res.StatusCode/100*100]++
		where := fmt.Sprintf("request %d: %s %.200s (body %.200q)", i, rt.method, target, body)
		if res.StatusCode >= 500 {
			t.Errorf("%s = %d: %.300s", where, res.StatusCode, raw)
			continue
		}
		if bytes.Contains(raw, []byte("fz-secret")) {
			t.Errorf("%s: answer shows a secret", where)
		}
		if res.StatusCode >= 400 {
			if diff := changed(state, storeState(t, e.st)); len(diff) > 0 {
				t.Errorf("%s = %d changed the store: %v", where, res.StatusCode, diff)
				state = settle(t, e.st)
			}
			continue
		}
		if rt.method != http.MethodGet && rt.method != http.MethodHead {
			state = settle(t, e.st)
		}
	}
	t.Logf("%d requests over %d routes in %v: %v", routeFuzzRequests, len(routes), time.Since(start).Round(time.Millisecond), counts)
}
