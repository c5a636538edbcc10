package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// fakeAgents is the command API of every benchmark agent, as IPA serves
// it (agent-api.md section 1): each agent its own loopback listener (its
// callback_url), as machines are each their own address, so that a
// conductor's connections to the agents are what they would be. The steps lists come back at
// once (sync commands); any other command starts and stays RUNNING, as a
// long erase_devices_metadata or image write does, so that the node stays
// in the state where its agent heartbeats and the conductor polls it. A
// second command while one runs is refused with 409 (agent busy), as IPA
// does. It also serves the deploy image (/image.raw) for the conductors'
// checks.
type fakeAgents struct {
	url   string
	mu    sync.Mutex
	nodes map[string]*fakeAgent
	polls atomic.Int64 // status requests (GET) answered
	cmds  atomic.Int64 // commands (POST) answered
}

type fakeAgent struct {
	results []map[string]any
	running bool // a long command was started
}

// imageData is the deploy image: its bytes never move, the write never ends.
var imageData = []byte(strings.Repeat("ferric heartbeat bench image\n", 64))

func imageMD5() string { s := md5.Sum(imageData); return hex.EncodeToString(s[:]) }

func startFakeAgents() (*fakeAgents, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeAgents{url: "http://" + l.Addr().String(), nodes: map[string]*fakeAgent{}}
	go func() { _ = http.Serve(l, f) }()
	return f, nil
}

// callback starts node uuid's agent and returns its callback_url.
func (f *fakeAgents) callback(uuid string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serveAgent(w, r, uuid) }))
	}()
	return "http://" + l.Addr().String(), nil
}

// busy reports whether node uuid's agent was given its long command.
func (f *fakeAgents) busy(uuid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.nodes[uuid]
	return a != nil && a.running
}

// ServeHTTP serves the deploy image.
func (f *fakeAgents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/image.raw" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(imageData)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(imageData)
	}
}

// serveAgent is the command API of node uuid's agent.
func (f *fakeAgents) serveAgent(w http.ResponseWriter, r *http.Request, uuid string) {
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.nodes[uuid]
	if a == nil {
		a = &fakeAgent{}
		f.nodes[uuid] = a
	}
	switch {
	case r.Method == http.MethodGet && (path == "/commands" || path == "/commands/"):
		f.polls.Add(1)
		writeJSON(w, 200, map[string]any{"commands": a.results})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/commands/"):
		f.polls.Add(1)
		id := strings.TrimPrefix(path, "/commands/")
		for _, res := range a.results {
			if res["id"] == id {
				writeJSON(w, 200, res)
				return
			}
		}
		writeJSON(w, 404, map[string]any{"faultcode": "Client", "faultstring": "Command not found"})
	case r.Method == http.MethodPost && (path == "/commands" || path == "/commands/"):
		f.cmds.Add(1)
		var body struct {
			Name string `json:"name"`
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(raw, &body); err != nil || body.Name == "" {
			writeJSON(w, 400, map[string]any{"faultcode": "Client", "faultstring": "Invalid command"})
			return
		}
		if a.running {
			writeJSON(w, 409, map[string]any{"faultcode": "Client", "faultstring": "Agent is busy: executing command " + body.Name})
			return
		}
		_, short, _ := strings.Cut(body.Name, ".")
		res := map[string]any{"id": fmt.Sprintf("%s-%d", uuid, len(a.results)), "command_name": short,
			"command_status": "SUCCEEDED", "command_error": nil, "command_result": nil}
		switch short {
		case "get_clean_steps":
			res["command_result"] = stepsResult("clean_steps",
				step("erase_devices_metadata", 99), step("erase_devices", 10))
		case "get_deploy_steps":
			res["command_result"] = stepsResult("deploy_steps", step("write_image", 0))
		case "get_partition_uuids":
			res["command_result"] = map[string]any{}
		case "sync":
		default: // the long command: it never ends while the benchmark runs
			res["command_status"] = "RUNNING"
			a.running = true
		}
		a.results = append(a.results, res)
		writeJSON(w, 200, res)
	case r.Method == http.MethodGet && path == "/status":
		writeJSON(w, 200, map[string]any{"started_at": 0, "version": "10.0.0"})
	default:
		http.NotFound(w, r)
	}
}

func step(name string, prio int) map[string]any {
	return map[string]any{"step": name, "priority": prio, "interface": "deploy", "reboot_requested": false, "abortable": true}
}

func stepsResult(key string, steps ...map[string]any) map[string]any {
	return map[string]any{key: map[string]any{"GenericHardwareManager": steps},
		"hardware_manager_version": map[string]any{"generic_hardware_manager": "1.2"}}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
