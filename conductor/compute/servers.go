package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// extraKey holds a server's attributes in its allocation's extra.
const extraKey = "compute"

// record is a server's attributes (allocation extra "compute").
type record struct {
	Name     string            `json:"name"`
	FlavorID string            `json:"flavor_id"`
	ImageID  string            `json:"image_id"`
	KeyName  string            `json:"key_name,omitempty"`
	Metadata map[string]string `json:"metadata"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"`
	// Project and User created the server (Nova's tenant_id, user_id):
	// under Keystone, its project's callers see it (scope.go).
	Project string `json:"project_id,omitempty"`
	User    string `json:"user_id,omitempty"`
	// Task is the action in flight (Nova's task_state) while the node
	// works on it: rebuilding, reboot_started(_hard), deleting, ...
	Task string `json:"task,omitempty"`
	// Fault is a failure of the server's own work (e.g. a deploy that
	// could not start).
	Fault string `json:"fault,omitempty"`
	// Description (2.19) and Tags (2.26).
	Description *string  `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Hostname (2.90) overrides the one derived from the name.
	Hostname               string `json:"hostname,omitempty"`
	AccessIPv4, AccessIPv6 string `json:",omitempty"`
	// TrustedCerts are the trusted_image_certificates (2.63) asked for:
	// kept and shown as Nova does with certificate validation disabled
	// (ferric verifies no image signatures).
	TrustedCerts []string `json:"trusted_certs,omitempty"`
}

// hostname is the server's host name: set (2.90) or from its name.
func (rec record) hostname() string {
	if rec.Hostname != "" {
		return rec.Hostname
	}
	return hostname(rec.Name)
}

// server is an allocation that is a server, with its node if it has one.
type server struct {
	a   *store.Allocation
	rec record
	n   *store.Node
	// userData is the server's user data once read (userDataRead).
	userData     []byte
	userDataRead bool
}

func recordOf(a *store.Allocation) (record, bool) {
	raw, ok := a.Extra[extraKey]
	if !ok {
		return record{}, false
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return record{}, false
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil {
		return record{}, false
	}
	if rec.Metadata == nil {
		rec.Metadata = map[string]string{}
	}
	return rec, true
}

func (rec record) object() map[string]any {
	b, _ := json.Marshal(rec)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (h *Handler) server(id string) (*server, error) {
	a, err := h.st.Allocation(id)
	if err != nil || !store.IsUUID(id) {
		return nil, faultf(http.StatusNotFound, "Instance %s could not be found.", id)
	}
	rec, ok := recordOf(a)
	if !ok {
		return nil, faultf(http.StatusNotFound, "Instance %s could not be found.", id)
	}
	s := &server{a: a, rec: rec}
	if a.NodeUUID != nil {
		s.n, _ = h.st.Node(*a.NodeUUID)
	}
	return s, nil
}

// servers lists every server, oldest first.
func (h *Handler) servers() []*server {
	var out []*server
	for _, a := range h.st.Allocations(func(a *store.Allocation) bool { _, ok := a.Extra[extraKey]; return ok }) {
		rec, ok := recordOf(a)
		if !ok {
			continue
		}
		s := &server{a: a, rec: rec}
		if a.NodeUUID != nil {
			s.n, _ = h.st.Node(*a.NodeUUID)
		}
		out = append(out, s)
	}
	return out
}

// updateRecord changes a server's record in one transaction.
func (h *Handler) updateRecord(ctx context.Context, id string, fn func(*record) error) error {
	return h.st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Allocation(id)
		if err != nil {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		rec, ok := recordOf(a)
		if !ok {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		if err := fn(&rec); err != nil {
			return err
		}
		rec.Updated = time.Now().UTC()
		if a.Extra == nil {
			a.Extra = store.Object{}
		}
		a.Extra[extraKey] = rec.object()
		return tx.PutAllocation(a)
	})
}

// state is a server's Nova status, task state, vm state, power state and
// build progress, and its fault message if any.
type state struct {
	status, task, vm string
	power, progress  int
	fault            string
}

// Nova's power states.
const (
	powerNone     = 0
	powerRunning  = 1
	powerShutdown = 4
)

func (s *server) state() state {
	st := s.stateOf()
	if s.rec.Task == "deleting" {
		st.task = "deleting"
	}
	return st
}

func (s *server) stateOf() state {
	a, n := s.a, s.n
	if s.rec.Fault != "" {
		return state{status: "ERROR", vm: "error", fault: s.rec.Fault}
	}
	switch a.State {
	case "error":
		msg := "No valid host was found. "
		if a.LastError != nil {
			msg += *a.LastError
		}
		return state{status: "ERROR", vm: "error", fault: msg}
	case "allocating":
		return state{status: "BUILD", vm: "building", task: "scheduling"}
	}
	if n == nil {
		if s.rec.Task == "deleting" {
			return state{status: "DELETED", vm: "deleted"}
		}
		return state{status: "BUILD", vm: "building", task: "scheduling"}
	}
	power := powerNone
	switch deref(n.PowerState) {
	case "power on":
		power = powerRunning
	case "power off":
		power = powerShutdown
	}
	fault := deref(n.LastError)
	switch n.ProvisionState {
	case "available", "manageable":
		if s.rec.Task == "deleting" {
			return state{status: "DELETED", vm: "deleted", power: power}
		}
		return state{status: "BUILD", vm: "building", task: "spawning", power: power}
	case "deploying", "wait call-back", "deploy hold":
		st := state{status: "BUILD", vm: "building", task: "spawning", power: power, progress: progress(n)}
		if s.rec.Task == "rebuilding" {
			st.status, st.vm, st.task = "REBUILD", "active", "rebuild_spawning"
		}
		return st
	case "active":
		switch {
		case n.TargetPowerState != nil && s.rec.Task == "reboot_started_hard":
			return state{status: "HARD_REBOOT", vm: "active", task: "reboot_started_hard", power: power, progress: 100}
		case n.TargetPowerState != nil && s.rec.Task == "reboot_started":
			return state{status: "REBOOT", vm: "active", task: "reboot_started", power: power, progress: 100}
		case power == powerShutdown:
			return state{status: "SHUTOFF", vm: "stopped", power: power, progress: 100}
		case s.rec.Task == taskPassword:
			return state{status: "PASSWORD", vm: "active", task: taskPassword, power: power, progress: 100}
		}
		return state{status: "ACTIVE", vm: "active", power: power, progress: 100}
	case "rescuing", "rescue wait":
		return state{status: "ACTIVE", vm: "active", task: "rescuing", power: power}
	case "rescue":
		return state{status: "RESCUE", vm: "rescued", power: power}
	case "unrescuing":
		return state{status: "RESCUE", vm: "rescued", task: "unrescuing", power: power}
	case "deleting", "cleaning", "clean wait":
		return state{status: "ACTIVE", vm: "active", task: "deleting", power: power}
	case "deploy failed", "rescue failed", "unrescue failed", "error", "clean failed":
		if fault == "" {
			fault = "The node's provision state is " + n.ProvisionState
		}
		return state{status: "ERROR", vm: "error", power: power, fault: fault}
	}
	return state{status: "BUILD", vm: "building", power: power}
}

// progress is the deploy's write progress, in percent, from the agent's
// report in driver_internal_info.agent_progress (0 without one).
func progress(n *store.Node) int {
	p, _ := n.DriverInternalInfo["agent_progress"].(map[string]any)
	written, _ := p["bytes_written"].(float64)
	total, _ := p["total_bytes"].(float64)
	if total <= 0 {
		return 0
	}
	return min(99, int(written*100/total))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func link(r *http.Request, kind, id string) []map[string]string {
	b := baseURL(r)
	return []map[string]string{
		{"rel": "self", "href": b + base + "/" + kind + "/" + id},
		{"rel": "bookmark", "href": b + "/compute/" + kind + "/" + id},
	}
}

func novaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (h *Handler) render(r *http.Request, s *server, detail bool) map[string]any {
	out := map[string]any{"id": s.a.UUID, "name": s.rec.Name, "links": link(r, "servers", s.a.UUID)}
	if !detail {
		return out
	}
	st := s.state()
	upd := s.rec.Updated
	if s.n != nil && s.n.UpdatedAt != nil && s.n.UpdatedAt.After(upd) {
		upd = *s.n.UpdatedAt
	}
	hostID, hostname := "", any(nil)
	if s.n != nil {
		sum := sha256.Sum224([]byte(s.n.UUID))
		hostID, hostname = hex.EncodeToString(sum[:]), s.n.UUID
	}
	var key any
	if s.rec.KeyName != "" {
		key = s.rec.KeyName
	}
	out["status"] = st.status
	out["tenant_id"] = s.rec.Project
	out["user_id"] = s.rec.User
	out["metadata"] = s.rec.Metadata
	out["hostId"] = hostID
	out["image"] = map[string]any{"id": s.rec.ImageID, "links": link(r, "images", s.rec.ImageID)[1:]}
	out["flavor"] = map[string]any{"id": s.rec.FlavorID, "links": link(r, "flavors", s.rec.FlavorID)[1:]}
	out["created"] = novaTime(s.rec.Created)
	out["updated"] = novaTime(upd)
	out["addresses"] = h.addresses(s.n)
	out["accessIPv4"], out["accessIPv6"] = s.rec.AccessIPv4, s.rec.AccessIPv6
	out["OS-DCF:diskConfig"] = "MANUAL"
	out["progress"] = st.progress
	out["key_name"] = key
	out["config_drive"] = "True"
	out["OS-EXT-AZ:availability_zone"] = "nova"
	out["OS-EXT-STS:task_state"] = nilIfEmpty(st.task)
	out["OS-EXT-STS:vm_state"] = st.vm
	out["OS-EXT-STS:power_state"] = st.power
	if adminView(r) {
		out["OS-EXT-SRV-ATTR:host"] = hostname
		out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = hostname
		out["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + s.a.UUID[:8]
	}
	out["OS-SRV-USG:launched_at"] = nil
	out["OS-SRV-USG:terminated_at"] = nil
	out["os-extended-volumes:volumes_attached"] = []any{}
	out["security_groups"] = []map[string]string{{"name": "default"}}
	if st.status == "ACTIVE" || st.status == "SHUTOFF" {
		out["OS-SRV-USG:launched_at"] = strings.TrimSuffix(novaTime(upd), "Z") + ".000000"
	}
	if st.fault != "" {
		out["fault"] = map[string]any{"code": 500, "message": st.fault, "created": novaTime(upd)}
	}
	h.renderVersioned(r, s, out)
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// addresses lists the node's ports by physical network ("baremetal"
// without one): the MAC, and the address when the port's extra names one
// (ip_address).
func (h *Handler) addresses(n *store.Node) map[string]any {
	out := map[string]any{}
	if n == nil {
		return out
	}
	for _, p := range h.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }) {
		net := "baremetal"
		if p.PhysicalNetwork != nil && *p.PhysicalNetwork != "" {
			net = *p.PhysicalNetwork
		}
		e := map[string]any{"OS-EXT-IPS-MAC:mac_addr": p.Address, "OS-EXT-IPS:type": "fixed", "version": 4, "addr": ""}
		if ip, _ := p.Extra["ip_address"].(string); ip != "" {
			e["addr"] = ip
			if strings.Contains(ip, ":") {
				e["version"] = 6
			}
		}
		list, _ := out[net].([]any)
		out[net] = append(list, e)
	}
	return out
}

func (h *Handler) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		match, err := serverFilter(r)
		if err != nil {
			h.writeErr(w, err)
			return
		}
		all := h.servers()
		// Newest first, as Nova's default sort (created_at desc).
		slices.SortStableFunc(all, func(a, b *server) int {
			if c := b.rec.Created.Compare(a.rec.Created); c != 0 {
				return c
			}
			return strings.Compare(b.a.UUID, a.a.UUID)
		})
		var picked []*server
		var ids []string
		for _, s := range all {
			if match(s) {
				picked = append(picked, s)
				ids = append(ids, s.a.UUID)
			}
		}
		from, to, err := page(r, ids, "marker [%s] not found")
		if err != nil {
			h.writeErr(w, err)
			return
		}
		list := []map[string]any{}
		if detail && atLeast(r, v23) && to > from {
			ud := h.allUserData()
			for _, s := range picked[from:to] {
				s.userData, s.userDataRead = ud[s.a.UUID], true
			}
		}
		for _, s := range picked[from:to] {
			list = append(list, h.render(r, s, detail))
		}
		out := map[string]any{"servers": list}
		collection := "servers"
		if detail {
			collection = "servers/detail"
		}
		last := ""
		if to > from {
			last = ids[to-1]
		}
		if links := nextLinks(r, collection, to-from, last); links != nil {
			out["servers_links"] = links
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *Handler) showServer(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": h.render(r, s, true)})
}

// buildRequest is what a server's deploy needs beyond its record. A
// create's is kept in the store until its deploy starts (builds.go).
type buildRequest struct {
	adminPass string
	userData  []byte
	files     []injected
	// vendorData and networkData go into the config drive as they are.
	vendorData, networkData map[string]any
}

type injected struct {
	path    string
	content []byte
}

func (h *Handler) createServer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, "server")
	if err != nil {
		h.writeErr(w, err)
		return
	}
	rec, fl, req, err := h.parseCreate(r, body)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	id := uuid.NewString()
	rc := fl.ResourceClass
	now := time.Now().UTC()
	rec.Created, rec.Updated = now, now
	ownServer(r, &rec)
	a := &store.Allocation{UUID: id, State: "allocating", ResourceClass: &rc, Traits: append([]string{}, fl.Traits...),
		CandidateNodes: []string{}, Extra: store.Object{extraKey: rec.object()}}
	err = h.st.Update(r.Context(), func(tx store.Tx) error {
		if err := tx.PutAllocation(a); err != nil {
			return err
		}
		if err := putUserData(tx, id, req.userData); err != nil {
			return err
		}
		return putBuild(tx, id, req)
	})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	h.mgr.StartAllocation(id)
	h.follow(id)
	w.Header().Set("Location", baseURL(r)+base+"/servers/"+id)
	out := map[string]any{"id": id, "links": link(r, "servers", id), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": []map[string]string{{"name": "default"}}, "adminPass": req.adminPass}
	writeJSON(w, http.StatusAccepted, map[string]any{"server": out})
}

// createKeys are the create request's members this API takes; others
// are refused as Nova's schema does.
var createKeys = map[string]bool{"name": true, "imageRef": true, "flavorRef": true, "metadata": true, "personality": true,
	"user_data": true, "key_name": true, "adminPass": true, "networks": true, "min_count": true, "max_count": true,
	"return_reservation_id": true, "availability_zone": true, "security_groups": true, "config_drive": true,
	"OS-DCF:diskConfig": true, "accessIPv4": true, "accessIPv6": true, "description": true, "tags": true,
	"hostname": true, "trusted_image_certificates": true}

func (h *Handler) parseCreate(r *http.Request, body map[string]any) (record, *Flavor, *buildRequest, error) {
	var rec record
	for k := range body {
		if !createKeys[k] {
			return rec, nil, nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute server. Value: %v. Additional properties are not allowed ('%s' was unexpected)", k, k)
		}
	}
	name, err := validName(body["name"])
	if err != nil {
		return rec, nil, nil, err
	}
	vrec, err := h.parseCreateVersioned(r, body)
	if err != nil {
		return rec, nil, nil, err
	}
	for _, k := range []string{"min_count", "max_count"} {
		if v, ok := body[k]; ok && fmt.Sprint(v) != "1" {
			return rec, nil, nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute %s. Value: %v. Only one server per request is supported", k, v)
		}
	}
	flavorRef, _ := body["flavorRef"].(string)
	fl := h.flavor(path.Base(flavorRef))
	if flavorRef == "" || fl == nil {
		return rec, nil, nil, faultf(http.StatusBadRequest, "Flavor %s could not be found.", flavorRef)
	}
	imageRef, _ := body["imageRef"].(string)
	img, ierr := h.cfg.Images.Get(path.Base(imageRef))
	if imageRef == "" || ierr != nil {
		return rec, nil, nil, faultf(http.StatusBadRequest, "Can not find requested image")
	}
	if img.Status != "active" {
		return rec, nil, nil, faultf(http.StatusBadRequest, "Image %s is not active.", img.ID)
	}
	md, err := parseMetadata(body["metadata"])
	if err != nil {
		return rec, nil, nil, err
	}
	req := &buildRequest{}
	if req.files, err = parsePersonality(body["personality"]); err != nil {
		return rec, nil, nil, err
	}
	if req.userData, err = parseUserData(body["user_data"]); err != nil {
		return rec, nil, nil, err
	}
	keyName, _ := body["key_name"].(string)
	if keyName != "" {
		if _, ok := h.keypair(keyName); !ok {
			return rec, nil, nil, faultf(http.StatusBadRequest, "Invalid key_name provided.")
		}
	}
	req.adminPass, _ = body["adminPass"].(string)
	if req.adminPass == "" {
		req.adminPass = password()
	}
	rec = record{Name: name, FlavorID: fl.ID, ImageID: img.ID, KeyName: keyName, Metadata: md,
		Description: vrec.Description, Tags: vrec.Tags, Hostname: vrec.Hostname, TrustedCerts: vrec.TrustedCerts}
	return rec, fl, req, nil
}

// parseMetadata checks a metadata object: string keys and values of at
// most 255 characters, at most MaxServerMeta items.
func parseMetadata(v any) (map[string]string, error) {
	out := map[string]string{}
	if v == nil {
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute metadata. Value: %v. %v is not of type 'object'", v, v)
	}
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute %s. Value: %v. %v is not of type 'string'", k, val, val)
		}
		if k == "" || len(k) > MaxMetaLength || len(s) > MaxMetaLength {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute metadata. Value: %s. Keys and values must be 1 to 255 and at most 255 characters", k)
		}
		out[k] = s
	}
	if len(out) > MaxServerMeta {
		return nil, faultf(http.StatusForbidden, "Quota exceeded for resources: ['metadata_items'].")
	}
	return out, nil
}

// parsePersonality checks injected files against Nova's limits.
func parsePersonality(v any) ([]injected, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute personality. Value: %v. It is not of type 'array'", v)
	}
	if len(list) > MaxPersonality {
		return nil, faultf(http.StatusForbidden, "Personality file limit exceeded")
	}
	var out []injected
	for _, x := range list {
		m, _ := x.(map[string]any)
		p, _ := m["path"].(string)
		c, _ := m["contents"].(string)
		if p == "" || !strings.HasPrefix(p, "/") {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute path. Value: %v. It must be an absolute path", m["path"])
		}
		if len(p) > 255 {
			return nil, faultf(http.StatusForbidden, "Personality file path exceeds maximum 255")
		}
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, faultf(http.StatusBadRequest, "Personality content for %s cannot be decoded", p)
		}
		if len(b) > MaxPersonalitySize {
			return nil, faultf(http.StatusForbidden, "Personality file content exceeds maximum %d", MaxPersonalitySize)
		}
		out = append(out, injected{path: p, content: b})
	}
	return out, nil
}

// password is a random admin password (Nova's default length, 12).
func password() string {
	const chars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

func (h *Handler) deleteServer(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	if err := h.delete(r.Context(), s); err != nil {
		h.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// delete tears the server's node down (if it was deployed) and removes
// the allocation once the node is free.
func (h *Handler) delete(ctx context.Context, s *server) error {
	if err := h.updateRecord(ctx, s.a.UUID, func(rec *record) error { rec.Task = "deleting"; return nil }); err != nil {
		return err
	}
	if s.n != nil {
		switch s.n.ProvisionState {
		case "available", "manageable", "enroll", "deleting", "cleaning", "clean wait":
		default:
			err := h.mgr.Provision(ctx, s.n.UUID, manager.ProvisionRequest{Target: "deleted", Version: ironicVersion})
			if err != nil {
				return managerFault(err)
			}
		}
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.reap(s.a.UUID)
	}()
	return nil
}

// ironicVersion is the Ironic API microversion of the provision requests
// the servers API makes.
const ironicVersion = 89

// reap removes a deleted server's allocation once its node no longer
// works on it (the teardown may have removed it already).
func (h *Handler) reap(id string) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		a, err := h.st.Allocation(id)
		if err != nil {
			return
		}
		busy := false
		if a.NodeUUID != nil {
			if n, err := h.st.Node(*a.NodeUUID); err == nil && deref(n.AllocationUUID) == id {
				switch n.ProvisionState {
				case "available", "manageable", "enroll", "clean failed", "error", "deploy failed":
				default:
					busy = true
				}
			}
		}
		if !busy {
			err := h.st.Update(h.ctx, func(tx store.Tx) error {
				a, err := tx.Allocation(id)
				if err != nil {
					return nil
				}
				if a.NodeUUID != nil {
					if n, err := tx.Node(*a.NodeUUID); err == nil && deref(n.AllocationUUID) == id {
						n.AllocationUUID, n.InstanceUUID = nil, nil
						if err := tx.PutNode(n); err != nil {
							return err
						}
					}
				}
				if err := dropBuild(tx, id); err != nil {
					return err
				}
				if err := dropUserData(tx, id); err != nil {
					return err
				}
				return tx.DeleteAllocation(id)
			})
			if err == nil {
				return
			}
			h.log.Warn("compute: removing a deleted server", "server", id, "err", err)
		}
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// managerFault maps a manager error to a Nova fault.
func managerFault(err error) error {
	switch {
	case errors.Is(err, manager.ErrNotFound):
		return faultf(http.StatusNotFound, "%v", err)
	case errors.Is(err, manager.ErrInvalidState), errors.Is(err, manager.ErrNodeLocked), errors.Is(err, manager.ErrConflict):
		return faultf(http.StatusConflict, "%v", err)
	case errors.Is(err, manager.ErrInvalidInput), errors.Is(err, manager.ErrNotAcceptable):
		return faultf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, manager.ErrForbidden):
		return faultf(http.StatusForbidden, "%v", err)
	}
	return err
}
