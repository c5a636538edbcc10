package compute

import (
	"net/http"
	"strings"
)

// renderVersioned adds to a server's detailed view the members later
// microversions show (Nova's view builder): extended attributes (2.3),
// locked (2.9), host_status (2.16), description (2.19), tags (2.26), the
// embedded flavor (2.47), trusted_image_certificates (2.63),
// server_groups (2.71), locked_reason (2.73), the hostname (2.90) and
// pinned_availability_zone (2.96).
func (h *Handler) renderVersioned(r *http.Request, s *server, out map[string]any) {
	admin := adminView(r)
	if atLeast(r, v23) && admin {
		out["OS-EXT-SRV-ATTR:reservation_id"] = "r-" + s.a.UUID[:8]
		out["OS-EXT-SRV-ATTR:launch_index"] = 0
		out["OS-EXT-SRV-ATTR:hostname"] = s.hostname()
		out["OS-EXT-SRV-ATTR:kernel_id"] = ""
		out["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
		out["OS-EXT-SRV-ATTR:root_device_name"] = nil
		out["OS-EXT-SRV-ATTR:user_data"] = h.userDataView(s)
	}
	if atLeast(r, v290) && !admin {
		out["OS-EXT-SRV-ATTR:hostname"] = s.hostname() // everyone's from 2.90
	}
	if atLeast(r, v29) {
		out["locked"] = false
	}
	if atLeast(r, v216) && admin {
		out["host_status"] = hostStatus(s)
	}
	if atLeast(r, v219) {
		out["description"] = s.rec.Description
	}
	if atLeast(r, v226) {
		out["tags"] = append([]string{}, s.rec.Tags...)
	}
	if atLeast(r, v247) {
		fl := map[string]any{}
		if f := h.flavor(s.rec.FlavorID); f != nil {
			fl = map[string]any{"original_name": f.Name, "vcpus": f.VCPUs, "ram": f.RAM, "disk": f.Disk,
				"ephemeral": 0, "swap": 0, "extra_specs": extraSpecs(f)}
		}
		out["flavor"] = fl
	}
	if atLeast(r, v263) {
		var certs any
		if len(s.rec.TrustedCerts) > 0 {
			certs = append([]string{}, s.rec.TrustedCerts...)
		}
		out["trusted_image_certificates"] = certs
	}
	if atLeast(r, v271) {
		out["server_groups"] = []string{}
	}
	if atLeast(r, v273) {
		out["locked_reason"] = nil
	}
	if atLeast(r, v296) {
		out["pinned_availability_zone"] = nil
	}
}

// hostStatus is Nova's host_status of the server's node: "" without one,
// MAINTENANCE, or UP.
func hostStatus(s *server) string {
	switch {
	case s.n == nil:
		return ""
	case s.n.Maintenance:
		return "MAINTENANCE"
	}
	return "UP"
}

// hostname is the server's host name: set (2.90) or from its name.
func (s *server) hostname() string { return s.rec.hostname() }

// hostname is a host name from a server name, as Nova sanitizes a
// display name: lower case, spaces and underscores to dashes, only
// letters, digits, dots and dashes, at most 63 characters.
func hostname(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c == ' ' || c == '_':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteRune(c)
		}
	}
	h := strings.Trim(b.String(), ".-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], ".-")
	}
	if h == "" {
		return "server"
	}
	return h
}

// partialKeys are what a server's update and rebuild answer leave out
// before 2.75 (Nova shows everything only from 2.75).
var partialKeys = []string{"OS-EXT-AZ:availability_zone", "config_drive", "key_name", "OS-SRV-USG:launched_at",
	"OS-SRV-USG:terminated_at", "security_groups", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
	"OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached", "OS-EXT-SRV-ATTR:host",
	"OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:reservation_id",
	"OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:kernel_id", "OS-EXT-SRV-ATTR:ramdisk_id",
	"OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data", "host_status", "server_groups"}

// renderChanged is a server's view in an update's or rebuild's answer.
func (h *Handler) renderChanged(r *http.Request, s *server) map[string]any {
	out := h.render(r, s, true)
	if !atLeast(r, v275) {
		for _, k := range partialKeys {
			delete(out, k)
		}
		if atLeast(r, v290) {
			out["OS-EXT-SRV-ATTR:hostname"] = s.hostname()
		} else {
			delete(out, "OS-EXT-SRV-ATTR:hostname")
		}
	}
	return out
}
