package compute

import (
	"net/http"
	"path"
	"regexp"
	"strings"
)

// listQueryKeys are the query parameters Nova's server listing knows;
// from 2.75 others are refused. This API filters on name, status, image,
// flavor, tags and tags-any, and pages with limit and marker; the others
// are accepted and ignored.
var listQueryKeys = map[string]bool{
	"user_id": true, "project_id": true, "tenant_id": true, "launch_index": true, "image_ref": true, "image": true,
	"kernel_id": true, "ramdisk_id": true, "hostname": true, "key_name": true, "power_state": true, "vm_state": true,
	"task_state": true, "host": true, "node": true, "flavor": true, "reservation_id": true, "launched_at": true,
	"terminated_at": true, "availability_zone": true, "name": true, "display_name": true, "description": true,
	"display_description": true, "locked_by": true, "uuid": true, "root_device_name": true, "config_drive": true,
	"access_ip_v4": true, "access_ip_v6": true, "auto_disk_config": true, "progress": true, "sort_key": true,
	"sort_dir": true, "all_tenants": true, "soft_deleted": true, "deleted": true, "status": true,
	"changes-since": true, "ip": true, "ip6": true, "created_at": true, "limit": true, "marker": true,
	"tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true, "changes-before": true, "locked": true,
}

// novaStatuses are the statuses Nova knows; from 2.38 a status filter
// outside them is refused.
var novaStatuses = map[string]bool{
	"ACTIVE": true, "BUILD": true, "DELETED": true, "ERROR": true, "HARD_REBOOT": true, "MIGRATING": true,
	"PASSWORD": true, "PAUSED": true, "REBOOT": true, "REBUILD": true, "RESCUE": true, "RESIZE": true,
	"REVERT_RESIZE": true, "SHELVED": true, "SHELVED_OFFLOADED": true, "SHUTOFF": true, "SOFT_DELETED": true,
	"SUSPENDED": true, "UNKNOWN": true, "VERIFY_RESIZE": true,
}

// serverFilter is the request's filter on servers, or a fault for a bad
// query.
func serverFilter(r *http.Request) (func(*server) bool, error) {
	q := r.URL.Query()
	if atLeast(r, v275) {
		for k, v := range q {
			if !listQueryKeys[k] {
				return nil, faultf(http.StatusBadRequest, "Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, strings.Join(v, ","), k)
			}
		}
	}
	inScope, err := listScope(r, strings.HasSuffix(r.URL.Path, "/detail"))
	if err != nil {
		return nil, err
	}
	var nameRE *regexp.Regexp
	if v := q.Get("name"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, faultf(http.StatusBadRequest, "Invalid regular expression for name: %s", v)
		}
		nameRE = re
	}
	status := strings.ToUpper(q.Get("status"))
	if status != "" && !novaStatuses[status] && atLeast(r, v238) {
		return nil, faultf(http.StatusBadRequest, "Invalid status value")
	}
	image, flavor := q.Get("image"), q.Get("flavor")
	var tagsAll, tagsAny []string
	if v := q.Get("tags"); v != "" {
		tagsAll = strings.Split(v, ",")
	}
	if v := q.Get("tags-any"); v != "" {
		tagsAny = strings.Split(v, ",")
	}
	return func(s *server) bool {
		if !inScope(s) {
			return false
		}
		if nameRE != nil && !nameRE.MatchString(s.rec.Name) || image != "" && path.Base(image) != s.rec.ImageID ||
			flavor != "" && path.Base(flavor) != s.rec.FlavorID || status != "" && s.state().status != status {
			return false
		}
		for _, t := range tagsAll {
			if !contains(s.rec.Tags, t) {
				return false
			}
		}
		if len(tagsAny) > 0 {
			found := false
			for _, t := range tagsAny {
				found = found || contains(s.rec.Tags, t)
			}
			if !found {
				return false
			}
		}
		return true
	}, nil
}
