package compute

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferric-metal/ferric/conductor/store"
	imgstore "github.com/ferric-metal/ferric/images/store"
)

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return faultf(http.StatusBadRequest, "Malformed request body")
	}
	return nil
}

// flavors is the configured mapping, or one flavor per resource class of
// the enrolled nodes.
func (h *Handler) flavors() []Flavor {
	if len(h.cfg.Flavors) > 0 {
		out := slices.Clone(h.cfg.Flavors)
		slices.SortStableFunc(out, func(a, b Flavor) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
	seen := map[string]bool{}
	var out []Flavor
	for _, n := range h.st.Nodes(func(n *store.Node) bool { return n.ResourceClass != nil && *n.ResourceClass != "" }) {
		rc := *n.ResourceClass
		if seen[rc] {
			continue
		}
		seen[rc] = true
		out = append(out, Flavor{ID: rc, Name: rc, ResourceClass: rc})
	}
	slices.SortFunc(out, func(a, b Flavor) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (h *Handler) flavor(ident string) *Flavor {
	for _, f := range h.flavors() {
		if f.ID == ident || f.Name == ident {
			return &f
		}
	}
	return nil
}

// extraSpecs are the flavor's own, plus what Nova's ironic driver reads:
// the resource class as a custom resource and the required traits.
func extraSpecs(f *Flavor) map[string]string {
	out := map[string]string{}
	rc := strings.ToUpper(f.ResourceClass)
	rc = strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, rc)
	out["resources:CUSTOM_"+rc] = "1"
	out["resources:VCPU"], out["resources:MEMORY_MB"], out["resources:DISK_GB"] = "0", "0", "0"
	for _, t := range f.Traits {
		out["trait:"+t] = "required"
	}
	for k, v := range f.ExtraSpecs {
		out[k] = v
	}
	return out
}

func (h *Handler) renderFlavor(r *http.Request, f *Flavor, detail bool) map[string]any {
	out := map[string]any{"id": f.ID, "name": f.Name, "links": link(r, "flavors", f.ID)}
	if detail {
		out["vcpus"], out["ram"], out["disk"] = f.VCPUs, f.RAM, f.Disk
		out["OS-FLV-EXT-DATA:ephemeral"], out["swap"], out["rxtx_factor"] = 0, "", 1.0
		out["OS-FLV-DISABLED:disabled"], out["os-flavor-access:is_public"] = false, true
	}
	if detail && atLeast(r, v255) {
		out["description"] = nil
	}
	if detail && atLeast(r, v261) {
		out["extra_specs"] = extraSpecs(f)
	}
	return out
}

func (h *Handler) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		all := h.flavors()
		ids := make([]string, len(all))
		for i, f := range all {
			ids[i] = f.ID
		}
		from, to, err := page(r, ids, "marker [%s] not found")
		if err != nil {
			h.writeErr(w, err)
			return
		}
		list := []map[string]any{}
		for _, f := range all[from:to] {
			list = append(list, h.renderFlavor(r, &f, detail))
		}
		out := map[string]any{"flavors": list}
		collection := "flavors"
		if detail {
			collection = "flavors/detail"
		}
		if to > from {
			if links := nextLinks(r, collection, to-from, ids[to-1]); links != nil {
				out["flavors_links"] = links
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *Handler) showFlavor(w http.ResponseWriter, r *http.Request) {
	f := h.flavor(r.PathValue("id"))
	if f == nil {
		writeFault(w, http.StatusNotFound, "Flavor %s could not be found.", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": h.renderFlavor(r, f, true)})
}

func (h *Handler) flavorExtraSpecs(w http.ResponseWriter, r *http.Request) {
	f := h.flavor(r.PathValue("id"))
	if f == nil {
		writeFault(w, http.StatusNotFound, "Flavor %s could not be found.", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"extra_specs": extraSpecs(f)})
}

// Nova's image statuses by Glance's.
var imageStatus = map[string]string{"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
	"deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR"}

func (h *Handler) renderImage(r *http.Request, img *imgstore.Image, detail bool) map[string]any {
	name := ""
	if img.Name != nil {
		name = *img.Name
	}
	out := map[string]any{"id": img.ID, "name": name, "links": link(r, "images", img.ID)}
	if detail {
		st := imageStatus[img.Status]
		if st == "" {
			st = "UNKNOWN"
		}
		progress := 0
		if st == "ACTIVE" {
			progress = 100
		}
		md := map[string]any{}
		for k, v := range img.Properties {
			md[k] = v
		}
		out["status"], out["progress"], out["minDisk"], out["minRam"] = st, progress, img.MinDisk, img.MinRAM
		out["created"], out["updated"], out["metadata"] = novaTime(img.CreatedAt), novaTime(img.UpdatedAt), md
		if img.Size != nil {
			out["OS-EXT-IMG-SIZE:size"] = *img.Size
		}
	}
	return out
}

func (h *Handler) listImages(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		imgs, _, err := h.cfg.Images.List(imgstore.Filter{Name: r.URL.Query().Get("name")})
		if err != nil {
			h.writeErr(w, err)
			return
		}
		list := []map[string]any{}
		for _, img := range imgs {
			list = append(list, h.renderImage(r, img, detail))
		}
		writeJSON(w, http.StatusOK, map[string]any{"images": list})
	}
}

func (h *Handler) showImage(w http.ResponseWriter, r *http.Request) {
	img, err := h.cfg.Images.Get(r.PathValue("id"))
	if err != nil {
		writeFault(w, http.StatusNotFound, "Image not found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"image": h.renderImage(r, img, true)})
}

// Keypair is a named SSH public key.
type Keypair struct {
	Name        string    `json:"name"`
	PublicKey   string    `json:"public_key"`
	Fingerprint string    `json:"fingerprint"`
	Type        string    `json:"type"`
	CreatedAt   time.Time `json:"created_at"`
}

func (h *Handler) keypairsFile() string {
	if h.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(h.cfg.StateDir, "compute-keypairs.json")
}

func (h *Handler) loadKeypairs() error {
	h.keypairs = map[string]*Keypair{}
	f := h.keypairsFile()
	if f == "" {
		return nil
	}
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("compute: %w", err)
	}
	if err := json.Unmarshal(b, &h.keypairs); err != nil {
		return fmt.Errorf("compute: %s: %w", f, err)
	}
	return nil
}

// saveKeypairs writes the key pairs (kpMu held).
func (h *Handler) saveKeypairs() error {
	f := h.keypairsFile()
	if f == "" {
		return nil
	}
	b, err := json.Marshal(h.keypairs)
	if err != nil {
		return err
	}
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f)
}

func (h *Handler) keypair(name string) (*Keypair, bool) {
	h.kpMu.Lock()
	defer h.kpMu.Unlock()
	kp, ok := h.keypairs[name]
	return kp, ok
}

func renderKeypair(r *http.Request, kp *Keypair, detail bool) map[string]any {
	out := map[string]any{"name": kp.Name, "public_key": kp.PublicKey, "fingerprint": kp.Fingerprint}
	if atLeast(r, v22) {
		out["type"] = kp.Type
	}
	if detail {
		out["user_id"], out["deleted"], out["deleted_at"], out["updated_at"], out["id"] = "", false, nil, nil, 0
		out["created_at"] = strings.TrimSuffix(novaTime(kp.CreatedAt), "Z") + ".000000"
	}
	return out
}

func (h *Handler) listKeypairs(w http.ResponseWriter, r *http.Request) {
	h.kpMu.Lock()
	all := make([]*Keypair, 0, len(h.keypairs))
	for _, kp := range h.keypairs {
		all = append(all, kp)
	}
	h.kpMu.Unlock()
	slices.SortFunc(all, func(a, b *Keypair) int { return strings.Compare(a.Name, b.Name) })
	from, to := 0, len(all)
	if atLeast(r, v235) {
		names := make([]string, len(all))
		for i, kp := range all {
			names[i] = kp.Name
		}
		var err error
		if from, to, err = page(r, names, "Marker %s could not be found."); err != nil {
			h.writeErr(w, err)
			return
		}
	}
	list := []map[string]any{}
	for _, kp := range all[from:to] {
		list = append(list, map[string]any{"keypair": renderKeypair(r, kp, false)})
	}
	out := map[string]any{"keypairs": list}
	if atLeast(r, v235) && to > from {
		if links := nextLinks(r, "os-keypairs", to-from, all[to-1].Name); links != nil {
			out["keypairs_links"] = links
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showKeypair(w http.ResponseWriter, r *http.Request) {
	kp, ok := h.keypair(r.PathValue("name"))
	if !ok {
		writeFault(w, http.StatusNotFound, "Keypair %s not found for user ", r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keypair": renderKeypair(r, kp, true)})
}

func (h *Handler) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h.kpMu.Lock()
	defer h.kpMu.Unlock()
	if _, ok := h.keypairs[name]; !ok {
		writeFault(w, http.StatusNotFound, "Keypair %s not found for user ", name)
		return
	}
	delete(h.keypairs, name)
	if err := h.saveKeypairs(); err != nil {
		h.writeErr(w, err)
		return
	}
	if atLeast(r, v22) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// createKeypair imports public_key, or generates a key pair and answers
// its private key once.
func (h *Handler) createKeypair(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, "keypair")
	if err != nil {
		h.writeErr(w, err)
		return
	}
	name, _ := body["name"].(string)
	if name == "" || len(name) > 255 || strings.TrimSpace(name) != name {
		writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute name. Value: %v. Keypair name must be 1 to 255 printable characters", body["name"])
		return
	}
	kp := &Keypair{Name: name, Type: "ssh", CreatedAt: time.Now().UTC()}
	if t, ok := body["type"]; ok {
		if !atLeast(r, v22) {
			writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute keypair. Value: type. Additional properties are not allowed ('type' was unexpected)")
			return
		}
		if t != "ssh" {
			writeFault(w, http.StatusBadRequest, "Keypair data is invalid: key type %v is not supported here (only ssh)", t)
			return
		}
	}
	if pub, _ := body["public_key"].(string); pub == "" && atLeast(r, v292) {
		writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute keypair. Value: %v. 'public_key' is a required property", keys(body))
		return
	}
	var private string
	if pub, _ := body["public_key"].(string); pub != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
		if err != nil {
			writeFault(w, http.StatusBadRequest, "Keypair data is invalid: failed to generate fingerprint")
			return
		}
		kp.PublicKey, kp.Fingerprint = strings.TrimSpace(pub), ssh.FingerprintLegacyMD5(key)
	} else {
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			h.writeErr(w, err)
			return
		}
		spk, _ := ssh.NewPublicKey(pk)
		blk, err := ssh.MarshalPrivateKey(sk, name)
		if err != nil {
			h.writeErr(w, err)
			return
		}
		kp.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " " + name
		kp.Fingerprint, private = ssh.FingerprintLegacyMD5(spk), string(pem.EncodeToMemory(blk))
	}
	h.kpMu.Lock()
	defer h.kpMu.Unlock()
	if _, ok := h.keypairs[name]; ok {
		writeFault(w, http.StatusConflict, "Key pair '%s' already exists.", name)
		return
	}
	if len(h.keypairs) >= MaxKeypairs {
		writeFault(w, http.StatusForbidden, "Quota exceeded, too many key pairs.")
		return
	}
	h.keypairs[name] = kp
	if err := h.saveKeypairs(); err != nil {
		delete(h.keypairs, name)
		h.writeErr(w, err)
		return
	}
	out := renderKeypair(r, kp, false)
	out["user_id"] = ""
	if private != "" {
		out["private_key"] = private
	}
	code := http.StatusOK
	if atLeast(r, v22) {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"keypair": out})
}

func (h *Handler) limits(w http.ResponseWriter, r *http.Request) {
	nodes := h.st.Nodes(func(n *store.Node) bool { return n.ResourceClass != nil })
	used := len(h.servers())
	abs := map[string]any{
		"maxServerMeta": MaxServerMeta, "maxPersonality": MaxPersonality, "maxPersonalitySize": MaxPersonalitySize,
		"maxImageMeta": 128, "maxTotalKeypairs": MaxKeypairs,
		"maxTotalInstances": len(nodes), "totalInstancesUsed": used,
		"maxTotalCores": -1, "totalCoresUsed": 0, "maxTotalRAMSize": -1, "totalRAMUsed": 0,
		"maxSecurityGroups": -1, "totalSecurityGroupsUsed": 0, "maxSecurityGroupRules": -1,
		"maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0, "maxServerGroups": -1, "totalServerGroupsUsed": 0,
		"maxServerGroupMembers": -1,
	}
	if atLeast(r, v236) {
		for _, k := range []string{"maxSecurityGroups", "totalSecurityGroupsUsed", "maxSecurityGroupRules",
			"maxTotalFloatingIps", "totalFloatingIpsUsed"} {
			delete(abs, k)
		}
	}
	if atLeast(r, v257) {
		delete(abs, "maxPersonality")
		delete(abs, "maxPersonalitySize")
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"absolute": abs, "rate": []any{}}})
}

// LoadFlavors reads a flavor mapping: a JSON list of flavors, each with
// an id (name defaults to it), a resource_class and optional traits,
// vcpus, ram, disk and extra_specs.
func LoadFlavors(file string) ([]Flavor, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("compute: flavors: %w", err)
	}
	var fl []Flavor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fl); err != nil {
		return nil, fmt.Errorf("compute: flavors %s: %w", file, err)
	}
	seen := map[string]bool{}
	for i := range fl {
		f := &fl[i]
		if f.ID == "" || f.ResourceClass == "" {
			return nil, fmt.Errorf("compute: flavors %s: flavor %d needs an id and a resource_class", file, i)
		}
		if seen[f.ID] {
			return nil, fmt.Errorf("compute: flavors %s: flavor id %q listed twice", file, f.ID)
		}
		seen[f.ID] = true
		if f.Name == "" {
			f.Name = f.ID
		}
	}
	return fl, nil
}
