package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/configdrive"
)

// allocationWait bounds the wait for an allocation to pick a node.
const allocationWait = 5 * time.Minute

// follow waits, in the background, for the server's allocation to pick a
// node, then deploys the server's image on it with its config drive,
// built from the build request stored by the create. The deploy's start
// removes that request; a deploy that cannot start puts the server in
// ERROR.
func (h *Handler) follow(id string) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		ctx, cancel := context.WithTimeout(h.ctx, allocationWait)
		defer cancel()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			a, err := h.st.Allocation(id)
			if err != nil {
				return // deleted
			}
			switch a.State {
			case "error":
				return // the server shows ERROR: no valid host
			case "active":
				if rec, _ := recordOf(a); rec.Task == "deleting" {
					return
				}
				h.startBuild(ctx, a)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// startBuild starts the first deploy of the server a with its stored
// build request, then drops the request.
func (h *Handler) startBuild(ctx context.Context, a *store.Allocation) {
	id := a.UUID
	req, ok, err := h.loadBuild(id)
	if err == nil && !ok {
		return // started already (by this conductor before a restart)
	}
	if err == nil && a.NodeUUID != nil {
		// A deploy that started before a restart, whose request was not
		// dropped yet, is not started again.
		if n, nerr := h.st.Node(*a.NodeUUID); nerr == nil && n.ProvisionState != "available" {
			req = nil
		}
	}
	if err == nil && req != nil {
		err = h.deploy(ctx, a, req, "active")
	}
	if err != nil && ctx.Err() != nil {
		return // stopping: the next start of the conductor resumes
	}
	if err != nil && a.NodeUUID != nil {
		// Another conductor (resuming builds after its own restart) may
		// have started this deploy first: not a failure of the server.
		if n, nerr := h.st.Node(*a.NodeUUID); nerr == nil && n.ProvisionState != "available" && deref(n.InstanceUUID) == id &&
			n.InstanceInfo["configdrive"] != nil {
			err = nil
		}
	}
	if err != nil {
		h.log.Warn("compute: deploy did not start", "server", id, "err", err)
		ferr := h.updateRecord(h.ctx, id, func(rec *record) error { rec.Fault = err.Error(); return nil })
		if ferr != nil {
			h.log.Warn("compute: recording a build's failure", "server", id, "err", ferr)
		}
	}
	if derr := h.st.Update(h.ctx, func(tx store.Tx) error { return dropBuild(tx, id) }); derr != nil {
		h.log.Warn("compute: dropping a started build's request", "server", id, "err", derr)
	}
}

// resumeBuilds goes on with the creates whose deploy had not started
// when the conductor stopped: their build requests are in the store.
// An allocation still "allocating" is started again (the manager does not
// resume allocations).
func (h *Handler) resumeBuilds() {
	pending := h.pendingBuilds()
	for _, s := range h.servers() {
		id := s.a.UUID
		if !pending[id] || s.rec.Task == "deleting" {
			continue
		}
		h.log.Info("compute: resuming a server's build after restart", "server", id, "allocation_state", s.a.State)
		if s.a.State == "allocating" {
			h.mgr.StartAllocation(id)
		}
		h.follow(id)
	}
}

// deploy sets the server's image on its node and starts the deploy
// (target "active") or rebuild with a config drive built from the
// server's record and req.
func (h *Handler) deploy(ctx context.Context, a *store.Allocation, req *buildRequest, target string) error {
	rec, ok := recordOf(a)
	if !ok || a.NodeUUID == nil {
		return fmt.Errorf("server %s has no node", a.UUID)
	}
	nodeUUID := *a.NodeUUID
	err := h.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(nodeUUID)
		if err != nil {
			return err
		}
		if n.InstanceInfo == nil {
			n.InstanceInfo = store.Object{}
		}
		n.InstanceInfo["image_source"] = rec.ImageID
		n.InstanceInfo["display_name"] = rec.Name
		req.networkData = n.NetworkData
		return tx.PutNode(n)
	})
	if err != nil {
		return fmt.Errorf("setting the image of node %s: %w", nodeUUID, err)
	}
	if req.vendorData, err = h.phoneHomeVendorData(ctx, a.UUID); err != nil {
		return fmt.Errorf("phone-home token: %w", err)
	}
	cd, err := h.configDrive(a.UUID, rec, req)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(cd)
	return h.mgr.Provision(ctx, nodeUUID, manager.ProvisionRequest{Target: target, ConfigDrive: raw, Version: ironicVersion})
}

// configDrive builds the server's config drive (base64 of the gzipped
// ISO): its identity and host name (set from 2.90, else from its name),
// metadata, key, admin password, injected files and user data.
func (h *Handler) configDrive(id string, rec record, req *buildRequest) (string, error) {
	node := configdrive.Node{UUID: id, Name: rec.Name, Hostname: rec.hostname(), AdminPass: req.adminPass, Meta: rec.Metadata}
	if rec.KeyName != "" {
		if kp, ok := h.keypair(rec.KeyName); ok {
			node.PublicKeys = map[string]string{kp.Name: kp.PublicKey}
		}
	}
	for _, f := range req.files {
		node.Files = append(node.Files, configdrive.File{Path: f.path, Content: f.content})
	}
	in := &configdrive.Input{VendorData: req.vendorData, NetworkData: req.networkData}
	if len(req.userData) > 0 {
		in.UserData, _ = json.Marshal(string(req.userData))
	}
	d, err := configdrive.Build(in, node)
	if err != nil {
		return "", fmt.Errorf("config drive: %w", err)
	}
	var iso bytes.Buffer
	if err := d.WriteISO(context.Background(), &iso); err != nil {
		return "", fmt.Errorf("config drive: %w", err)
	}
	return configdrive.Encode(iso.Bytes())
}

// action serves POST /servers/{id}/action.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	body, err := readBody(r, "")
	if err != nil {
		h.writeErr(w, err)
		return
	}
	if len(body) != 1 {
		writeFault(w, http.StatusBadRequest, "There is no such action: %v", keys(body))
		return
	}
	for name, arg := range body {
		out, err := h.do(r, s, name, arg)
		if err != nil {
			h.writeErr(w, err)
			return
		}
		if name == "rebuild" {
			s, _ = h.server(s.a.UUID)
			doc := h.renderChanged(r, s)
			// As Nova's rebuild answer: the new admin password, the key
			// from 2.54 and the user data from 2.57 whatever the view.
			doc["adminPass"] = out["adminPass"]
			if atLeast(r, v254) {
				doc["key_name"] = nilIfEmpty(s.rec.KeyName)
			}
			if atLeast(r, v257) {
				doc["user_data"] = h.userDataView(s)
			}
			writeJSON(w, http.StatusAccepted, map[string]any{"server": doc})
			return
		}
		if out != nil {
			writeJSON(w, http.StatusOK, out)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// allowed lists the statuses each action may start from.
var allowed = map[string][]string{
	"reboot":         {"ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT", "ERROR"},
	"os-stop":        {"ACTIVE", "ERROR"},
	"os-start":       {"SHUTOFF"},
	"rebuild":        {"ACTIVE", "SHUTOFF", "ERROR"},
	"rescue":         {"ACTIVE", "SHUTOFF", "ERROR"},
	"unrescue":       {"RESCUE"},
	"changePassword": {"ACTIVE"},
}

// do runs one action; a non-nil result is answered with 200 (a
// rebuild's, its admin password, goes into its answer).
func (h *Handler) do(r *http.Request, s *server, name string, arg any) (map[string]any, error) {
	ok, known := allowed[name]
	if !known {
		return nil, faultf(http.StatusBadRequest, "There is no such action: %s", name)
	}
	st := s.state()
	if st.task != "" && name != "reboot" || !contains(ok, st.status) || s.n == nil {
		return nil, faultf(http.StatusConflict, "Cannot '%s' instance %s while it is in vm_state %s", name, s.a.UUID, st.vm)
	}
	args, _ := arg.(map[string]any)
	ctx := r.Context()
	nodeUUID := s.n.UUID
	switch name {
	case "reboot":
		typ, _ := args["type"].(string)
		task := "reboot_started"
		switch typ {
		case "HARD":
			task = "reboot_started_hard"
		case "SOFT":
		default:
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute type. Value: %v. 'SOFT' or 'HARD' expected", args["type"])
		}
		if err := h.updateRecord(ctx, s.a.UUID, func(rec *record) error { rec.Task = task; return nil }); err != nil {
			return nil, err
		}
		target := "rebooting"
		if typ == "SOFT" {
			target = "soft rebooting"
		}
		return nil, managerFault(h.mgr.SetPowerState(ctx, nodeUUID, target, 0))
	case "os-stop":
		return nil, managerFault(h.mgr.SetPowerState(ctx, nodeUUID, "power off", 0))
	case "os-start":
		return nil, managerFault(h.mgr.SetPowerState(ctx, nodeUUID, "power on", 0))
	case "rebuild":
		ra, err := h.checkRebuild(r, args)
		if err != nil {
			return nil, err
		}
		pw, err := h.rebuild(ctx, s, args, ra)
		if err != nil {
			return nil, err
		}
		return map[string]any{"adminPass": pw}, nil
	case "rescue":
		pw, _ := args["adminPass"].(string)
		if pw == "" {
			pw = password()
		}
		err := h.mgr.Provision(ctx, nodeUUID, manager.ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: ironicVersion})
		if err != nil {
			return nil, managerFault(err)
		}
		return map[string]any{"adminPass": pw}, nil
	case "unrescue":
		return nil, managerFault(h.mgr.Provision(ctx, nodeUUID, manager.ProvisionRequest{Target: "unrescue", Version: ironicVersion}))
	case "changePassword":
		return nil, h.changePassword(ctx, s, args)
	}
	return nil, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rebuild redeploys the server's node with a new image (imageRef), and a
// new config drive (new admin password unless given; metadata and files
// replaced when given; the key (2.54), user data (2.57), trusted
// certificates (2.63), hostname (2.90) and description (2.19) changed as
// ra says, the kept user data otherwise). It returns the admin password.
func (h *Handler) rebuild(ctx context.Context, s *server, args map[string]any, ra *rebuildArgs) (string, error) {
	imageRef, _ := args["imageRef"].(string)
	img, err := h.cfg.Images.Get(path.Base(imageRef))
	if imageRef == "" || err != nil {
		return "", faultf(http.StatusBadRequest, "Can not find requested image")
	}
	if img.Status != "active" {
		return "", faultf(http.StatusBadRequest, "Image %s is not active.", img.ID)
	}
	req := &buildRequest{}
	req.adminPass, _ = args["adminPass"].(string)
	if req.adminPass == "" {
		req.adminPass = password()
	}
	var md map[string]string
	if v, ok := args["metadata"]; ok {
		if md, err = parseMetadata(v); err != nil {
			return "", err
		}
	}
	if req.files, err = parsePersonality(args["personality"]); err != nil {
		return "", err
	}
	if ra.setUserData {
		req.userData = ra.userData
	} else if req.userData, err = h.userData(s.a.UUID); err != nil {
		return "", err
	}
	name, _ := args["name"].(string)
	id := s.a.UUID
	err = h.st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Allocation(id)
		if err != nil {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		rec, ok := recordOf(a)
		if !ok {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		rec.ImageID, rec.Task, rec.Fault = img.ID, "rebuilding", ""
		if md != nil {
			rec.Metadata = md
		}
		if name != "" {
			rec.Name = name
		}
		for _, c := range ra.change {
			c(&rec)
		}
		rec.Updated = time.Now().UTC()
		a.Extra[extraKey] = rec.object()
		if err := tx.PutAllocation(a); err != nil {
			return err
		}
		if ra.setUserData {
			return putUserData(tx, id, ra.userData)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	a, err := h.st.Allocation(id)
	if err != nil {
		return "", err
	}
	return req.adminPass, managerFault(h.deploy(ctx, a, req, "rebuild"))
}
