package compute

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/ferric-metal/ferric/conductor/store"
)

// validName is Nova's "name" format: 1 to 255 printable characters, not
// starting or ending with white space.
func validName(v any) (string, error) {
	s, ok := v.(string)
	if !ok || s == "" || len([]rune(s)) > 255 {
		return "", faultf(http.StatusBadRequest, "Invalid input for field/attribute name. Value: %v. It must be a string of 1 to 255 characters", v)
	}
	r := []rune(s)
	if unicode.IsSpace(r[0]) || unicode.IsSpace(r[len(r)-1]) || strings.IndexFunc(s, func(c rune) bool { return !unicode.IsPrint(c) && c != ' ' }) >= 0 {
		return "", faultf(http.StatusBadRequest, "Invalid input for field/attribute name. Value: %s. An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.", s)
	}
	return s, nil
}

// validDescription is Nova's description (2.19): null, or at most 255
// printable characters.
func validDescription(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok || len([]rune(s)) > 255 || strings.IndexFunc(s, func(c rune) bool { return !unicode.IsPrint(c) && c != ' ' }) >= 0 {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute description. Value: %v. It must be null or at most 255 printable characters", v)
	}
	return &s, nil
}

// hostnameRE is Nova's hostname (2.90).
var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$`)

// updateServer serves PUT /servers/{id}: name, description (2.19),
// hostname (2.90), accessIPv4/6 and OS-DCF:diskConfig, validated as Nova
// does; bad input changes nothing. The node's instance_info.display_name
// follows the name.
func (h *Handler) updateServer(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	body, err := readBody(r, "server")
	if err != nil {
		h.writeErr(w, err)
		return
	}
	var changes []func(*record)
	for k, v := range body {
		switch {
		case k == "name":
			name, err := validName(v)
			if err != nil {
				h.writeErr(w, err)
				return
			}
			changes = append(changes, func(rec *record) { rec.Name = name })
		case k == "description" && atLeast(r, v219):
			d, err := validDescription(v)
			if err != nil {
				h.writeErr(w, err)
				return
			}
			changes = append(changes, func(rec *record) { rec.Description = d })
		case k == "hostname" && atLeast(r, v290):
			hn, err := validHostname(r, v)
			if err != nil {
				h.writeErr(w, err)
				return
			}
			changes = append(changes, func(rec *record) { rec.Hostname = hn })
		case k == "accessIPv4" || k == "accessIPv6":
			ip, _ := v.(string)
			p := net.ParseIP(ip)
			if p == nil || (p.To4() != nil) != (k == "accessIPv4") {
				writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute %s. Value: %v. %v is not a '%s'", k, v, v, map[bool]string{true: "ipv4", false: "ipv6"}[k == "accessIPv4"])
				return
			}
			changes = append(changes, func(rec *record) {
				if k == "accessIPv4" {
					rec.AccessIPv4 = ip
				} else {
					rec.AccessIPv6 = ip
				}
			})
		case k == "OS-DCF:diskConfig":
			if v != "AUTO" && v != "MANUAL" {
				writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute OS-DCF:diskConfig. Value: %v. %v is not one of ['AUTO', 'MANUAL']", v, v)
				return
			}
		default:
			writeFault(w, http.StatusBadRequest, "Invalid input for field/attribute server. Value: %v. Additional properties are not allowed ('%s' was unexpected)", body, k)
			return
		}
	}
	id := s.a.UUID
	err = h.st.Update(r.Context(), func(tx store.Tx) error {
		a, err := tx.Allocation(id)
		if err != nil {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		rec, ok := recordOf(a)
		if !ok {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		for _, c := range changes {
			c(&rec)
		}
		rec.Updated = time.Now().UTC()
		a.Extra[extraKey] = rec.object()
		if err := tx.PutAllocation(a); err != nil {
			return err
		}
		if a.NodeUUID == nil {
			return nil
		}
		n, err := tx.Node(*a.NodeUUID)
		if err != nil || deref(n.InstanceUUID) != id || n.InstanceInfo == nil || n.InstanceInfo["display_name"] == rec.Name {
			return nil
		}
		n.InstanceInfo["display_name"] = rec.Name
		return tx.PutNode(n)
	})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	if s, err = h.server(id); err != nil {
		h.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": h.renderChanged(r, s)})
}

// parseCreateVersioned checks the members of a create whose rules depend
// on the microversion: description (from 2.19), networks (required from
// 2.37: "auto", "none" or a list), tags (from 2.52), personality (gone
// from 2.57), trusted_image_certificates (from 2.63) and hostname (from
// 2.90). It returns the description, tags, certificates and hostname.
func (h *Handler) parseCreateVersioned(r *http.Request, body map[string]any) (record, error) {
	var rec record
	unexpected := func(k string) error {
		return faultf(http.StatusBadRequest, "Invalid input for field/attribute server. Value: %v. Additional properties are not allowed ('%s' was unexpected)", k, k)
	}
	if v, ok := body["description"]; ok {
		if !atLeast(r, v219) {
			return rec, unexpected("description")
		}
		d, err := validDescription(v)
		if err != nil {
			return rec, err
		}
		rec.Description = d
	}
	if _, ok := body["personality"]; ok && atLeast(r, v257) {
		return rec, unexpected("personality")
	}
	if v, ok := body["hostname"]; ok {
		if !atLeast(r, v290) {
			return rec, unexpected("hostname")
		}
		hn, err := validHostname(r, v)
		if err != nil {
			return rec, err
		}
		rec.Hostname = hn
	}
	if v, ok := body["trusted_image_certificates"]; ok {
		if !atLeast(r, v263) {
			return rec, unexpected("trusted_image_certificates")
		}
		certs, err := validTrustedCerts(v)
		if err != nil {
			return rec, err
		}
		rec.TrustedCerts = certs
	}
	if v, ok := body["tags"]; ok {
		if !atLeast(r, v252) {
			return rec, unexpected("tags")
		}
		tags, err := validTags(v)
		if err != nil {
			return rec, err
		}
		rec.Tags = tags
	}
	nets, ok := body["networks"]
	switch {
	case !ok && atLeast(r, v237):
		return rec, faultf(http.StatusBadRequest, "Invalid input for field/attribute server. Value: %v. 'networks' is a required property", keys(body))
	case !ok:
	case nets == "auto" || nets == "none":
		if !atLeast(r, v237) {
			return rec, faultf(http.StatusBadRequest, "Invalid input for field/attribute networks. Value: %v. %v is not of type 'array'", nets, nets)
		}
	default:
		if _, isList := nets.([]any); !isList {
			return rec, faultf(http.StatusBadRequest, "Invalid input for field/attribute networks. Value: %v. %v is not valid under any of the given schemas", nets, nets)
		}
	}
	return rec, nil
}

// maxTags is Nova's limit on a server's tags.
const maxTags = 50

// validTags checks a list of tags as Nova's schema: at most 50 strings of
// 1 to 60 characters without "/" or ",".
func validTags(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok || len(list) > maxTags {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute tags. Value: %v. It must be a list of at most %d tags", v, maxTags)
	}
	var out []string
	for _, x := range list {
		t, ok := x.(string)
		if !ok || t == "" || len([]rune(t)) > 60 || strings.ContainsAny(t, "/,") {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute tags. Value: %v. Tags are 1 to 60 characters without '/' or ','", x)
		}
		if !contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// rebuildKeys are the rebuild members this API takes, with the version
// each appears at (Nova's rebuild schema); personality goes at 2.57.
var rebuildKeys = map[string]version{
	"name": v21, "imageRef": v21, "adminPass": v21, "metadata": v21, "preserve_ephemeral": v21,
	"OS-DCF:diskConfig": v21, "accessIPv4": v21, "accessIPv6": v21, "personality": v21, "description": v219,
	"key_name": v254, "user_data": v257, "trusted_image_certificates": v263, "hostname": v290,
}

// rebuildArgs are a rebuild's checked members that change the server
// beyond its image; a nil function leaves that attribute as it is.
type rebuildArgs struct {
	change []func(*record)
	// userData is the new user data when setUserData (null: none).
	userData    []byte
	setUserData bool
}

// checkRebuild refuses a rebuild's members that the request's version
// does not know and bad values (name, description, key_name (2.54),
// user_data (2.57), trusted_image_certificates (2.63), hostname (2.90)),
// changing nothing; it returns the changes the valid ones make.
func (h *Handler) checkRebuild(r *http.Request, args map[string]any) (*rebuildArgs, error) {
	for k := range args {
		from, ok := rebuildKeys[k]
		if !ok || !atLeast(r, from) || k == "personality" && atLeast(r, v257) {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute rebuild. Value: %v. Additional properties are not allowed ('%s' was unexpected)", keys(args), k)
		}
	}
	out := &rebuildArgs{}
	if v, ok := args["name"]; ok {
		if _, err := validName(v); err != nil {
			return nil, err
		}
	}
	if v, ok := args["description"]; ok {
		d, err := validDescription(v)
		if err != nil {
			return nil, err
		}
		out.change = append(out.change, func(rec *record) { rec.Description = d })
	}
	if v, ok := args["key_name"]; ok {
		name := ""
		if v != nil {
			s, isStr := v.(string)
			if !isStr || s == "" || len([]rune(s)) > 255 {
				return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute key_name. Value: %v. It must be null or a string of 1 to 255 characters", v)
			}
			if _, found := h.keypair(s); !found {
				return nil, faultf(http.StatusBadRequest, "Invalid key_name provided.")
			}
			name = s
		}
		out.change = append(out.change, func(rec *record) { rec.KeyName = name })
	}
	if v, ok := args["user_data"]; ok {
		ud, err := parseUserData(v)
		if err != nil {
			return nil, err
		}
		out.userData, out.setUserData = ud, true
	}
	if v, ok := args["trusted_image_certificates"]; ok {
		certs, err := validTrustedCerts(v)
		if err != nil {
			return nil, err
		}
		out.change = append(out.change, func(rec *record) { rec.TrustedCerts = certs })
	}
	if v, ok := args["hostname"]; ok {
		hn, err := validHostname(r, v)
		if err != nil {
			return nil, err
		}
		out.change = append(out.change, func(rec *record) { rec.Hostname = hn })
	}
	return out, nil
}

// fqdnRE is Nova's FQDN hostname (2.94): letters, digits, "-", "." and
// "_".
var fqdnRE = regexp.MustCompile(`^[a-zA-Z0-9-._]*$`)

// validHostname checks a hostname member (2.90) as Nova's schema: 2 to 63
// letters, digits and dashes, not starting or ending with a dash; from
// 2.94 a FQDN of 1 to 255 characters.
func validHostname(r *http.Request, v any) (string, error) {
	hn, ok := v.(string)
	if atLeast(r, v294) {
		if !ok || hn == "" || len(hn) > 255 || !fqdnRE.MatchString(hn) {
			return "", faultf(http.StatusBadRequest, "Invalid input for field/attribute hostname. Value: %v. It must be 1 to 255 letters, digits, dashes, dots and underscores", v)
		}
		return hn, nil
	}
	if !ok || len(hn) < 2 || len(hn) > 63 || !hostnameRE.MatchString(hn) {
		return "", faultf(http.StatusBadRequest, "Invalid input for field/attribute hostname. Value: %v. It must be 2 to 63 letters, digits and dashes, not starting or ending with a dash", v)
	}
	return hn, nil
}

// validTrustedCerts checks trusted_image_certificates (2.63) as Nova's
// schema: null, or 1 to 50 distinct non-empty strings.
func validTrustedCerts(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 || len(list) > 50 {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute trusted_image_certificates. Value: %v. It must be null or a list of 1 to 50 certificate ids", v)
	}
	var out []string
	for _, x := range list {
		s, ok := x.(string)
		if !ok || s == "" || contains(out, s) {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute trusted_image_certificates. Value: %v. The certificate ids must be distinct non-empty strings", v)
		}
		out = append(out, s)
	}
	return out, nil
}
