package policy

// The personas Ironic's default rules are built from (its
// ironic/common/policy.py, release 21.4), written in the rule language.
// Keystone puts implied roles in tokens, so an admin also holds member
// and reader, a manager member and reader, a member reader.
const (
	systemAdmin  = `role:admin and system_scope:all`
	systemMember = `(role:member and system_scope:all) or rule:service_role`
	systemReader = `(role:reader and system_scope:all) or (role:service and system_scope:all) or rule:service_role`

	projectAdmin   = `role:admin and project_id:%(node.owner)s`
	projectMember  = `role:member and (project_id:%(node.owner)s or project_id:%(node.lessee)s)`
	projectReader  = `role:reader and (project_id:%(node.owner)s or project_id:%(node.lessee)s)`
	systemService  = `role:service and system_scope:all`
	projectService = `role:service and project_id:%(node.owner)s`

	ownerAdmin    = `role:admin and project_id:%(node.owner)s`
	ownerManager  = `role:manager and project_id:%(node.owner)s`
	ownerMember   = `role:member and project_id:%(node.owner)s`
	ownerReader   = `role:reader and project_id:%(node.owner)s`
	lesseeAdmin   = `role:admin and project_id:%(node.lessee)s`
	lesseeManager = `role:manager and project_id:%(node.lessee)s`

	allocationOwnerMember = `role:member and project_id:%(allocation.owner)s`
	allocationOwnerReader = `role:reader and project_id:%(allocation.owner)s`
)

// any joins rules with or, each in parentheses.
func anyOf(rules ...string) string {
	s := ""
	for i, r := range rules {
		if i > 0 {
			s += " or "
		}
		s += "(" + r + ")"
	}
	return s
}

// The composite rules most defaults use.
var (
	systemOrProjectMember = anyOf(systemMember, projectMember, systemService)
	systemOrProjectReader = anyOf(systemReader, projectReader, projectService)
	// Provision state, maintenance, VIFs, instance_info: the owner's
	// members and the lessee's admins and managers.
	systemOrOwnerMemberAndLesseeAdmin = anyOf(systemMember, systemService, ownerMember, lesseeAdmin, lesseeManager, projectService)
	systemAdminOrOwnerAdmin           = anyOf(systemAdmin, systemService, ownerAdmin, ownerManager, projectService)
	systemMemberOrOwnerAdmin          = anyOf(systemMember, systemService, ownerAdmin, ownerManager, projectService)
	systemMemberOrOwnerMember         = anyOf(systemMember, systemService, ownerMember, projectService)
	systemOrOwnerReader               = anyOf(systemReader, systemService, ownerReader, projectService)
	systemMemberOrOwnerLesseeAdmin    = anyOf(systemMember, systemService, ownerAdmin, ownerManager, lesseeAdmin, lesseeManager, projectService)
	allocationMember                  = anyOf(systemMember, allocationOwnerMember)
	allocationReader                  = anyOf(systemReader, allocationOwnerReader)
	allocationCreator                 = anyOf(systemMember, "role:member")
	apiReader                         = `(role:reader) or (role:service)`
	targetPropertiesReader            = anyOf(systemReader, "role:admin")
)

// Scopes a rule accepts.
var (
	systemOnly    = []string{"system"}
	systemProject = []string{"system", "project"}
)

// DefaultRule is one of Ironic's policy rules with its default check string
// and the token scopes it accepts (nil: any).
type DefaultRule struct {
	Name   string
	Check  string
	Scopes []string
}

// Defaults are Ironic 21.4's default rules, as Ironic enforces them with
// [oslo_policy] enforce_scope and enforce_new_defaults set (its "secure
// RBAC"): the legacy rules (admin_api, is_admin, baremetal_admin roles)
// are there for policy files that name them, but no default uses them.
func Defaults() []DefaultRule {
	sp, so := systemProject, systemOnly
	return []DefaultRule{
		{"admin_api", "role:admin or role:administrator", nil},
		{"public_api", "is_public_api:True", nil},
		{"show_password", "!", nil},
		{"show_instance_secrets", "!", nil},
		{"service_role", "role:service and project_name:%(config.service_project_name)s", nil},
		{"is_member", "(project_domain_id:default or project_domain_id:None) and (project_name:demo or project_name:baremetal)", nil},
		{"is_observer", "rule:is_member and (role:observer or role:baremetal_observer)", nil},
		{"is_admin", "rule:admin_api or (rule:is_member and role:baremetal_admin)", nil},
		{"is_node_owner", "project_id:%(node.owner)s", nil},
		{"is_node_lessee", "project_id:%(node.lessee)s", nil},
		{"is_allocation_owner", "project_id:%(allocation.owner)s", nil},

		{"baremetal:node:create", anyOf(systemAdmin, systemService), sp},
		{"baremetal:node:create:self_owned_node", "(role:admin) or (role:service)", sp},
		{"baremetal:node:list", apiReader, sp},
		{"baremetal:node:list_all", systemReader, sp},
		{"baremetal:node:get", systemOrProjectReader, sp},
		{"baremetal:node:get:filter_threshold", systemReader, sp},
		{"baremetal:node:get:last_error", systemOrOwnerReader, sp},
		{"baremetal:node:get:reservation", systemOrOwnerReader, sp},
		{"baremetal:node:get:driver_internal_info", systemOrOwnerReader, sp},
		{"baremetal:node:get:driver_info", systemOrOwnerReader, sp},
		{"baremetal:node:update:driver_info", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:properties", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:chassis_uuid", systemAdmin, sp},
		{"baremetal:node:update:instance_uuid", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:lessee", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:owner", systemMember, sp},
		{"baremetal:node:update:driver_interfaces", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:update:network_data", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:conductor_group", systemMember, sp},
		{"baremetal:node:update:name", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update:retired", systemMemberOrOwnerMember, sp},
		{"baremetal:node:update", systemOrProjectMember, sp},
		{"baremetal:node:update_extra", systemOrProjectMember, sp},
		{"baremetal:node:update_instance_info", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:update_owner_provisioned", systemAdmin, so},
		{"baremetal:node:delete", systemAdmin, sp},
		{"baremetal:node:delete:self_owned_node", projectAdmin, sp},
		{"baremetal:node:validate", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:set_maintenance", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:clear_maintenance", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:get_boot_device", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:set_boot_device", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:get_indicator_state", systemOrProjectReader, sp},
		{"baremetal:node:set_indicator_state", systemMemberOrOwnerMember, sp},
		{"baremetal:node:inject_nmi", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:get_states", systemOrProjectReader, sp},
		{"baremetal:node:set_power_state", systemOrProjectMember, sp},
		{"baremetal:node:set_boot_mode", systemOrProjectMember, sp},
		{"baremetal:node:set_secure_boot", systemOrProjectMember, sp},
		{"baremetal:node:set_provision_state", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:set_raid_state", systemMemberOrOwnerMember, sp},
		{"baremetal:node:get_console", systemMemberOrOwnerMember, sp},
		{"baremetal:node:set_console_state", systemMemberOrOwnerMember, sp},
		{"baremetal:node:vif:list", systemOrProjectReader, sp},
		{"baremetal:node:vif:attach", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:vif:detach", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:node:traits:list", systemOrProjectReader, sp},
		{"baremetal:node:traits:set", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:traits:delete", systemMemberOrOwnerAdmin, sp},
		{"baremetal:node:bios:get", systemOrProjectReader, sp},
		{"baremetal:node:disable_cleaning", systemAdmin, so},
		{"baremetal:node:history:get", systemOrOwnerReader, sp},
		{"baremetal:node:inventory:get", systemOrOwnerReader, sp},
		{"baremetal:node:update:shard", systemAdmin, sp},
		{"baremetal:node:vendor_passthru", systemAdmin, sp},
		{"baremetal:node:ipa_heartbeat", "", nil},
		{"baremetal:driver:ipa_lookup", "", nil},
		{"baremetal:shards:get", systemReader, sp},

		{"baremetal:port:get", systemOrProjectReader, sp},
		{"baremetal:port:list", apiReader, sp},
		{"baremetal:port:list_all", systemReader, sp},
		{"baremetal:port:create", systemAdminOrOwnerAdmin, sp},
		{"baremetal:port:delete", systemAdminOrOwnerAdmin, sp},
		{"baremetal:port:update", systemMemberOrOwnerAdmin, sp},
		{"baremetal:portgroup:get", systemOrProjectReader, sp},
		{"baremetal:portgroup:create", systemAdminOrOwnerAdmin, sp},
		{"baremetal:portgroup:delete", systemAdminOrOwnerAdmin, sp},
		{"baremetal:portgroup:update", systemMemberOrOwnerAdmin, sp},
		{"baremetal:portgroup:list", apiReader, sp},
		{"baremetal:portgroup:list_all", systemReader, sp},

		{"baremetal:chassis:get", systemReader, so},
		{"baremetal:chassis:create", systemAdmin, so},
		{"baremetal:chassis:delete", systemAdmin, so},
		{"baremetal:chassis:update", systemMember, so},
		{"baremetal:driver:get", systemReader, so},
		{"baremetal:driver:get_properties", systemReader, so},
		{"baremetal:driver:get_raid_logical_disk_properties", systemReader, so},
		{"baremetal:driver:vendor_passthru", systemAdmin, so},

		{"baremetal:volume:list_all", systemReader, sp},
		{"baremetal:volume:list", apiReader, sp},
		{"baremetal:volume:get", systemOrProjectReader, sp},
		{"baremetal:volume:create", systemMemberOrOwnerLesseeAdmin, sp},
		{"baremetal:volume:delete", systemMemberOrOwnerLesseeAdmin, sp},
		{"baremetal:volume:update", systemOrOwnerMemberAndLesseeAdmin, sp},
		{"baremetal:volume:view_target_properties", targetPropertiesReader, sp},

		{"baremetal:conductor:get", systemReader, so},

		{"baremetal:allocation:get", allocationReader, sp},
		{"baremetal:allocation:list", apiReader, sp},
		{"baremetal:allocation:list_all", systemReader, sp},
		{"baremetal:allocation:create", allocationCreator, sp},
		{"baremetal:allocation:create_restricted", systemMember, sp},
		{"baremetal:allocation:delete", allocationMember, sp},
		{"baremetal:allocation:update", allocationMember, sp},

		{"baremetal:events:post", systemAdmin, so},
		{"baremetal:deploy_template:get", systemReader, so},
		{"baremetal:deploy_template:create", systemAdmin, so},
		{"baremetal:deploy_template:delete", systemAdmin, so},
		{"baremetal:deploy_template:update", systemAdmin, so},
	}
}

// renamed maps rules to the older rule they replaced (oslo.policy's
// deprecated_rule, where the name changed). A policy file that sets the
// older rule and not the newer one sets both, as oslo.policy does, so that
// files written for older releases keep their meaning.
var renamed = map[string]string{
	"baremetal:node:get:filter_threshold":     "baremetal:node:get",
	"baremetal:node:get:last_error":           "baremetal:node:get",
	"baremetal:node:get:reservation":          "baremetal:node:get",
	"baremetal:node:get:driver_internal_info": "baremetal:node:get",
	"baremetal:node:get:driver_info":          "baremetal:node:get",
	"baremetal:node:update:driver_info":       "baremetal:node:update",
	"baremetal:node:update:properties":        "baremetal:node:update",
	"baremetal:node:update:chassis_uuid":      "baremetal:node:update",
	"baremetal:node:update:instance_uuid":     "baremetal:node:update",
	"baremetal:node:update:lessee":            "baremetal:node:update",
	"baremetal:node:update:owner":             "baremetal:node:update",
	"baremetal:node:update:driver_interfaces": "baremetal:node:update",
	"baremetal:node:update:network_data":      "baremetal:node:update",
	"baremetal:node:update:conductor_group":   "baremetal:node:update",
	"baremetal:node:update:name":              "baremetal:node:update",
	"baremetal:node:update:retired":           "baremetal:node:update",
	"baremetal:node:set_boot_device":          "baremetal:node:set_maintenance",
	"baremetal:node:set_boot_mode":            "baremetal:node:set_power_state",
	"baremetal:node:set_secure_boot":          "baremetal:node:set_power_state",
	"baremetal:node:history:get":              "baremetal:node:get",
	"baremetal:node:inventory:get":            "baremetal:node:get",
	"baremetal:portgroup:list":                "baremetal:portgroup:get",
	"baremetal:portgroup:list_all":            "baremetal:portgroup:get",
	"baremetal:volume:list_all":               "baremetal:volume:get",
	"baremetal:volume:list":                   "baremetal:volume:get",
	"baremetal:volume:view_target_properties": "baremetal:volume:update",
}

// Additions are rules for what ferric serves beyond Ironic 21.4: the
// names later Ironic releases gave them where there are some (virtual
// media, firmware, inspection rules, runbooks: the last two system-scoped
// here), and ferric's own (ramdisk logs, routes no rule names).
func Additions() []DefaultRule {
	sp, so := systemProject, systemOnly
	return []DefaultRule{
		{"baremetal:node:vmedia:attach", systemOrProjectMember, sp},
		{"baremetal:node:vmedia:detach", systemOrProjectMember, sp},
		{"baremetal:node:vmedia:get", systemOrProjectReader, sp},
		{"baremetal:node:firmware:get", systemOrProjectReader, sp},
		{"baremetal:node:ramdisk_logs:get", systemOrOwnerReader, sp},
		{"baremetal:inspection_rule:get", systemReader, so},
		{"baremetal:inspection_rule:create", systemAdmin, so},
		{"baremetal:inspection_rule:update", systemAdmin, so},
		{"baremetal:inspection_rule:delete", systemAdmin, so},
		{"baremetal:runbook:get", systemReader, so},
		{"baremetal:runbook:create", systemAdmin, so},
		{"baremetal:runbook:update", systemAdmin, so},
		{"baremetal:runbook:delete", systemAdmin, so},
		// Any other route: reads for system readers, writes for system
		// admins.
		{"ferric:default:get", systemReader, so},
		{"ferric:default:write", systemAdmin, so},
	}
}
