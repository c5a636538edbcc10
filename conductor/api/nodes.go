package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

func ifaceField(kind string, min Version) field[*store.Node] {
	return field[*store.Node]{kind + "_interface", min, func(_ echo.Context, n *store.Node) any {
		if v, ok := n.Interfaces[kind]; ok {
			return v
		}
		return nil
	}}
}

func subLinks(c echo.Context, n *store.Node, sub string) []map[string]string {
	b := baseURL(c)
	return []map[string]string{
		{"href": b + "/v1/nodes/" + n.UUID + "/" + sub, "rel": "self"},
		{"href": b + "/nodes/" + n.UUID + "/" + sub, "rel": "bookmark"},
	}
}

// nodeFields are the node's fields with the version that introduced each.
var nodeFields []field[*store.Node]

func init() {
	nf := func(name string, min Version, get func(echo.Context, *store.Node) any) {
		nodeFields = append(nodeFields, field[*store.Node]{name, min, get})
	}
	nf("uuid", 1, func(_ echo.Context, n *store.Node) any { return n.UUID })
	nf("name", 5, func(_ echo.Context, n *store.Node) any { return strPtr(n.Name) })
	nf("created_at", 1, func(_ echo.Context, n *store.Node) any { return ironicTime(n.CreatedAt) })
	nf("updated_at", 1, func(_ echo.Context, n *store.Node) any { return timePtr(n.UpdatedAt) })
	nf("console_enabled", 1, func(_ echo.Context, n *store.Node) any { return n.ConsoleEnabled })
	nf("driver", 1, func(_ echo.Context, n *store.Node) any { return n.Driver })
	nf("driver_info", 1, func(_ echo.Context, n *store.Node) any { return maskObject(n.DriverInfo, isSecretKey) })
	nf("driver_internal_info", 3, func(_ echo.Context, n *store.Node) any {
		return maskStepLists(maskObject(n.DriverInternalInfo, isSecretKey))
	})
	nf("extra", 1, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.Extra) })
	nf("instance_info", 1, func(_ echo.Context, n *store.Node) any { return maskObject(n.InstanceInfo, maskInstanceInfo) })
	nf("instance_uuid", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.InstanceUUID) })
	nf("last_error", 1, func(_ echo.Context, n *store.Node) any { return maskedStr(n.LastError) })
	nf("maintenance", 1, func(_ echo.Context, n *store.Node) any { return n.Maintenance })
	nf("maintenance_reason", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.MaintenanceReason) })
	nf("power_state", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.PowerState) })
	nf("target_power_state", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.TargetPowerState) })
	nf("provision_state", 1, func(c echo.Context, n *store.Node) any { return showState(ver(c), n.ProvisionState) })
	nf("target_provision_state", 1, func(c echo.Context, n *store.Node) any {
		if n.TargetProvisionState == nil {
			return nil
		}
		return showState(ver(c), *n.TargetProvisionState)
	})
	nf("provision_updated_at", 1, func(_ echo.Context, n *store.Node) any { return timePtr(n.ProvisionUpdatedAt) })
	nf("reservation", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.Reservation) })
	nf("properties", 1, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.Properties) })
	nf("chassis_uuid", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.ChassisUUID) })
	nf("inspection_finished_at", 6, func(_ echo.Context, n *store.Node) any { return timePtr(n.InspectionFinishedAt) })
	nf("inspection_started_at", 6, func(_ echo.Context, n *store.Node) any { return timePtr(n.InspectionStartedAt) })
	nf("clean_step", 7, func(_ echo.Context, n *store.Node) any { return maskStep(objOrEmpty(n.CleanStep)) })
	nf("raid_config", 12, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.RAIDConfig) })
	nf("target_raid_config", 12, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.TargetRAIDConfig) })
	nodeFields = append(nodeFields, ifaceField("network", 20))
	nf("resource_class", 21, func(_ echo.Context, n *store.Node) any { return strPtr(n.ResourceClass) })
	for _, k := range []string{"boot", "console", "deploy", "inspect", "management", "power", "raid", "vendor"} {
		nodeFields = append(nodeFields, ifaceField(k, 31))
	}
	nodeFields = append(nodeFields, ifaceField("storage", 33))
	nf("traits", 37, func(_ echo.Context, n *store.Node) any {
		if n.Traits == nil {
			return []string{}
		}
		return n.Traits
	})
	nodeFields = append(nodeFields, ifaceField("rescue", 38), ifaceField("bios", 40))
	nf("fault", 42, func(_ echo.Context, n *store.Node) any { return strPtr(n.Fault) })
	nf("deploy_step", 44, func(_ echo.Context, n *store.Node) any { return maskStep(objOrEmpty(n.DeployStep)) })
	nf("conductor_group", 46, func(_ echo.Context, n *store.Node) any { return n.ConductorGroup })
	nf("automated_clean", 47, func(_ echo.Context, n *store.Node) any {
		if n.AutomatedClean == nil {
			return nil
		}
		return *n.AutomatedClean
	})
	nf("protected", 48, func(_ echo.Context, n *store.Node) any { return n.Protected })
	nf("protected_reason", 48, func(_ echo.Context, n *store.Node) any { return strPtr(n.ProtectedReason) })
	nf("conductor", 49, func(c echo.Context, n *store.Node) any {
		if o, ok := c.Get("conductor").(interface{ Owner(*store.Node) string }); ok {
			if h := o.Owner(n); h != "" {
				return h
			}
		}
		return nil
	})
	nf("owner", 50, func(_ echo.Context, n *store.Node) any { return strPtr(n.Owner) })
	nf("description", 51, func(_ echo.Context, n *store.Node) any { return strPtr(n.Description) })
	nf("allocation_uuid", 52, func(_ echo.Context, n *store.Node) any { return strPtr(n.AllocationUUID) })
	nf("retired", 61, func(_ echo.Context, n *store.Node) any { return n.Retired })
	nf("retired_reason", 61, func(_ echo.Context, n *store.Node) any { return strPtr(n.RetiredReason) })
	nf("lessee", 65, func(_ echo.Context, n *store.Node) any { return strPtr(n.Lessee) })
	nf("network_data", 66, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.NetworkData) })
	nf("boot_mode", 75, func(_ echo.Context, n *store.Node) any { return strPtr(n.BootMode) })
	nf("secure_boot", 75, func(_ echo.Context, n *store.Node) any {
		if n.SecureBoot == nil {
			return nil
		}
		return *n.SecureBoot
	})
	nf("shard", 82, func(_ echo.Context, n *store.Node) any { return strPtr(n.Shard) })
	nf("parent_node", 83, func(_ echo.Context, n *store.Node) any { return strPtr(n.ParentNode) })
	nodeFields = append(nodeFields, ifaceField("firmware", 86))
	nf("disable_power_off", 95, func(_ echo.Context, n *store.Node) any { return n.DisablePowerOff })
	nf("service_step", 87, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.ServiceStep) })
	nf("links", 1, func(c echo.Context, n *store.Node) any { return links(c, "nodes", n.UUID) })
	nf("ports", 1, func(c echo.Context, n *store.Node) any { return subLinks(c, n, "ports") })
	nf("states", 14, func(c echo.Context, n *store.Node) any { return subLinks(c, n, "states") })
	nf("portgroups", 24, func(c echo.Context, n *store.Node) any { return subLinks(c, n, "portgroups") })
	nf("volume", 32, func(c echo.Context, n *store.Node) any { return subLinks(c, n, "volume") })
	nodeFieldsSorted = sortedFields(nodeFields)
}

// nodeFieldsSorted is nodeFields in name order, for the list encoder.
var nodeFieldsSorted []field[*store.Node]

// showState rewrites state names for old microversions.
func showState(v Version, s string) any {
	switch {
	case s == "available" && v < 2:
		return nil
	case s == "inspect wait" && v < 39:
		return "inspecting"
	}
	return s
}

var nodeListDefault = map[string]bool{"uuid": true, "name": true, "instance_uuid": true, "power_state": true,
	"provision_state": true, "maintenance": true, "links": true}

var patchableNode = []string{"automated_clean", "bios_interface", "boot_interface", "chassis_uuid", "conductor_group",
	"console_interface", "deploy_interface", "description", "disable_power_off", "driver", "driver_info", "extra", "firmware_interface",
	"inspect_interface", "instance_info", "instance_uuid", "lessee", "maintenance", "management_interface", "name",
	"network_data", "network_interface", "owner", "parent_node", "power_interface", "properties", "protected",
	"protected_reason", "raid_interface", "rescue_interface", "resource_class", "retired", "retired_reason", "shard",
	"storage_interface", "vendor_interface"}

// creatable node fields (besides the patchable ones).
var creatableNode = []string{"uuid"}

func nodeFieldMin(name string) (Version, bool) {
	for _, f := range nodeFields {
		if f.name == name {
			return f.min, true
		}
	}
	return 0, false
}

// updateAllowed are the states in which a node in transition may be patched.
var updateAllowed = map[string]bool{"deploy failed": true, "inspecting": true, "inspect failed": true,
	"inspect wait": true, "clean failed": true, "error": true, "verifying": true, "adopt failed": true,
	"rescue failed": true, "unrescue failed": true, "service": true, "service hold": true, "service failed": true}

var deleteAllowed = []string{"manageable", "enroll", "adopt failed", "available"}

func (s *Server) nodeRoutes(g *echo.Group) {
	g.GET("/nodes", s.listNodes(false))
	g.GET("/nodes/", s.listNodes(false))
	g.GET("/nodes/detail", s.listNodes(true))
	g.POST("/nodes", s.createNode)
	g.POST("/nodes/", s.createNode)
	g.DELETE("/nodes", func(c echo.Context) error { return badRequest("Missing mandatory parameter: node_ident") })
	g.GET("/nodes/:node", s.getNode)
	g.PATCH("/nodes/:node", s.patchNode)
	g.DELETE("/nodes/:node", s.deleteNode)
	g.GET("/nodes/:node/states", s.nodeStates)
	g.PUT("/nodes/:node/states/provision", s.provision, s.toOwner)
	g.PUT("/nodes/:node/states/power", s.power, s.toOwner)
	g.PUT("/nodes/:node/states/raid", s.setRAID, s.minVer(12, true), s.toOwner)
	g.PUT("/nodes/:node/states/boot_mode", s.setBootMode, s.minVer(76, false), s.toOwner)
	g.PUT("/nodes/:node/states/secure_boot", s.setSecureBoot, s.minVer(76, false), s.toOwner)
	g.PUT("/nodes/:node/maintenance", s.setMaintenance(true))
	g.DELETE("/nodes/:node/maintenance", s.setMaintenance(false))
	g.GET("/nodes/:node/validate", s.validate, s.toOwner)
	g.GET("/nodes/:node/management/boot_device", s.getBootDevice, s.toOwner)
	g.PUT("/nodes/:node/management/boot_device", s.setBootDevice, s.toOwner)
	g.GET("/nodes/:node/management/boot_device/supported", s.supportedBootDevices, s.toOwner)
	g.PUT("/nodes/:node/management/inject_nmi", s.injectNMI, s.minVer(29, false), s.toOwner)
	g.POST("/nodes/:node/vmedia", s.attachVMedia, s.minVer(89, false), s.toOwner)
	g.DELETE("/nodes/:node/vmedia", s.detachVMedia, s.minVer(89, false), s.toOwner)
	g.GET("/nodes/:node/vmedia", s.getVMedia, s.minVer(93, false), s.toOwner)
	g.GET("/nodes/:node/traits", s.getTraits, s.minVer(37, false))
	g.PUT("/nodes/:node/traits", s.setTraits, s.minVer(37, false))
	g.DELETE("/nodes/:node/traits", s.deleteTraits, s.minVer(37, false))
	g.PUT("/nodes/:node/traits/:trait", s.addTrait, s.minVer(37, false))
	g.DELETE("/nodes/:node/traits/:trait", s.deleteTrait, s.minVer(37, false))
	g.GET("/nodes/:node/vifs", s.listVIFs, s.minVer(28, false))
	g.POST("/nodes/:node/vifs", s.attachVIF, s.minVer(28, false))
	g.DELETE("/nodes/:node/vifs/:vif", s.detachVIF, s.minVer(28, false))
	g.GET("/nodes/:node/ports", s.nodePorts(false))
	g.GET("/nodes/:node/ports/detail", s.nodePorts(true))
	g.GET("/nodes/:node/portgroups", s.nodePortgroups(false), s.minVer(24, false))
	g.GET("/nodes/:node/portgroups/detail", s.nodePortgroups(true), s.minVer(24, false))
	g.GET("/nodes/:node/inventory", s.inventory, s.minVer(81, false))
	g.GET("/nodes/:node/history", s.nodeHistory, s.minVer(78, false))
	g.GET("/nodes/:node/children", s.nodeChildren, s.minVer(83, false))
	g.GET("/nodes/:node/states/console", s.getConsole)
	g.PUT("/nodes/:node/states/console", s.setConsole, s.toOwner)
	g.GET("/nodes/:node/vendor_passthru/methods", s.vendorMethods)
	g.Any("/nodes/:node/vendor_passthru", s.vendorPassthru, s.toOwner)
	g.GET("/nodes/:node/firmware", s.listFirmware, s.minVer(86, false))
	g.GET("/nodes/:node/bios", s.listBIOS, s.minVer(40, false))
	g.GET("/nodes/:node/bios/:setting", s.getBIOS, s.minVer(40, false))
	g.GET("/nodes/:node/history/:event", s.nodeHistoryEvent, s.minVer(78, false))
	g.GET("/nodes/:node/allocation", s.nodeAllocation, s.minVer(52, false))
	g.DELETE("/nodes/:node/allocation", s.deleteNodeAllocation, s.minVer(52, false))
}

// noValidHost is Ironic's answer when no conductor can take a node.
func noValidHost(drv, group string) *Error {
	return badRequest("No valid host was found. Reason: No conductor service registered which supports driver %s for conductor group \"%s\".", drv, group)
}

// findNode resolves a node ident (uuid if UUID-like, else name).
func (s *Server) findNode(c echo.Context, ident string) (*store.Node, error) {
	n, err := s.st.Node(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Node %s could not be found.", ident)
	}
	return n, err
}

// setConductor lets the node documents name each node's conductor.
func (s *Server) setConductor(c echo.Context) { c.Set("conductor", s.mgr) }

func (s *Server) getNode(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(nodeFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	s.setConductor(c)
	return c.JSON(http.StatusOK, render(c, nodeFields, n, ver(c), want))
}

// readJSONObject reads a request body that must be a JSON object.
func readJSONObject(c echo.Context, kind string) (map[string]any, []byte, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		var any_ any
		if json.Unmarshal(body, &any_) == nil {
			return nil, nil, badRequest("Schema error for %s: %s is not of type 'object'", kind, python.Repr(any_))
		}
		return nil, nil, &Error{Code: http.StatusBadRequest, Msg: "Invalid JSON in request body: " + err.Error()}
	}
	return m, body, nil
}

var (
	nameOldRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)
	reserved  = map[string]bool{"detail": true, "validate": true, "states": true, "maintenance": true,
		"management": true, "vendor_passthru": true}
)

func validNodeName(v Version, name string) *Error {
	if store.IsUUID(name) || reserved[name] {
		return badRequest("Expected a logical name but received %s.", name)
	}
	if v < 10 && !nameOldRE.MatchString(strings.ToLower(name)) || v >= 10 && !nameRE.MatchString(name) {
		return badRequest("Expected a logical name but received %s.", name)
	}
	return nil
}

func (s *Server) createNode(c echo.Context) error {
	v := ver(c)
	body, _, err := readJSONObject(c, "node")
	if err != nil {
		return err
	}
	allowed := append(append([]string{}, patchableNode...), creatableNode...)
	var extraKeys []string
	for k := range body {
		if !slices.Contains(allowed, k) {
			extraKeys = append(extraKeys, k)
		}
	}
	if len(extraKeys) > 0 {
		sort.Strings(extraKeys)
		quoted := make([]string, len(extraKeys))
		for i, k := range extraKeys {
			quoted[i] = "'" + k + "'"
		}
		verb := "was"
		if len(quoted) > 1 {
			verb = "were"
		}
		return badRequest("Schema error for node: Additional properties are not allowed (%s %s unexpected)", strings.Join(quoted, ", "), verb)
	}
	for k, val := range body {
		if min, ok := nodeFieldMin(k); ok && min > v && val != nil {
			return notAcceptable("Field %s is not supported by version %s.", k, v)
		}
	}
	drv, _ := body["driver"].(string)
	if drv == "" {
		return badRequest("Schema error for node: 'driver' is a required property")
	}
	ht := s.mgr.Drivers().Lookup(drv)
	n := &store.Node{UUID: uuid.NewString(), Driver: drv, DriverInfo: store.Object{}, DriverInternalInfo: store.Object{},
		Properties: store.Object{}, Extra: store.Object{}, InstanceInfo: store.Object{}, NetworkData: store.Object{},
		Traits: []string{}, Interfaces: map[string]string{}}
	if u, ok := body["uuid"].(string); ok {
		if !store.IsUUID(u) {
			return badRequest("Expected a UUID but received %s.", u)
		}
		n.UUID = store.CanonicalUUID(u)
	}
	group := ""
	if g, ok := body["conductor_group"].(string); ok {
		group = strings.ToLower(g)
	}
	if ht == nil || !s.mgr.Serves(group, drv) {
		return noValidHost(drv, group)
	}
	if err := applyNodeFields(n, body, v, ht, true); err != nil {
		return err
	}
	if v >= 11 {
		n.ProvisionState = "enroll"
	} else {
		n.ProvisionState = "available"
	}
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		if n.ChassisUUID != nil {
			if _, err := tx.Chassis(*n.ChassisUUID); err != nil {
				return badRequest("Chassis %s could not be found.", *n.ChassisUUID)
			}
		}
		if err := resolveParent(tx, n, n.Owner); err != nil {
			return err
		}
		return tx.PutNode(n)
	})
	if err != nil {
		return s.nodeWriteError(err, n)
	}
	s.setConductor(c)
	c.Response().Header().Set("Location", baseURL(c)+"/v1/nodes/"+n.UUID)
	out := render(c, nodeFields, n, v, nil)
	out["created_at"] = ironichttp.Time(n.CreatedAt)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) nodeWriteError(err error, n *store.Node) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		switch de.Field {
		case "name":
			return conflict("A node with name %s already exists.", de.Value)
		case "instance_uuid":
			return conflict("Instance %s is already associated with a node, it cannot be associated with this other node %s", de.Value, n.UUID)
		}
		if de.Table == "nodes" && de.Field == "" {
			return conflict("A node with UUID %s already exists.", n.UUID)
		}
	}
	return err
}

// applyNodeFields copies user-settable fields from a decoded body (create
// or the result of a patch) into n, validating types and values.
func applyNodeFields(n *store.Node, body map[string]any, v Version, ht *driver.HardwareType, create bool) *Error {
	typeErr := func(k string, val any, typ string) *Error {
		return badRequest("Schema error for node: %s is not of type '%s'", python.Repr(val), typ)
	}
	optStr := func(k string, maxLen int) (*string, *Error) {
		val, ok := body[k]
		if !ok || val == nil {
			return nil, nil
		}
		str, ok := val.(string)
		if !ok {
			return nil, typeErr(k, val, "string")
		}
		if maxLen > 0 && len(str) > maxLen {
			return nil, badRequest("Schema error for node: %s is too long", python.Repr(str))
		}
		return &str, nil
	}
	obj := func(k string) (store.Object, *Error) {
		val, ok := body[k]
		if !ok || val == nil {
			return store.Object{}, nil
		}
		m, ok := val.(map[string]any)
		if !ok {
			return nil, typeErr(k, val, "object")
		}
		return m, nil
	}
	boolean := func(k string) (bool, *Error) {
		val, ok := body[k]
		if !ok || val == nil {
			return false, nil
		}
		b, ok := val.(bool)
		if !ok {
			return false, typeErr(k, val, "boolean")
		}
		return b, nil
	}
	var err *Error
	if n.Name, err = optStr("name", 255); err != nil {
		return err
	}
	if n.Name != nil {
		if err := validNodeName(v, *n.Name); err != nil {
			return err
		}
	}
	for _, k := range []string{"driver_info", "properties", "extra", "instance_info", "network_data"} {
		o, err := obj(k)
		if err != nil {
			return err
		}
		switch k {
		case "driver_info":
			n.DriverInfo = o
		case "properties":
			n.Properties = o
		case "extra":
			n.Extra = o
		case "instance_info":
			n.InstanceInfo = o
		case "network_data":
			n.NetworkData = o
		}
	}
	if n.InstanceUUID, err = optStr("instance_uuid", 36); err != nil {
		return err
	}
	if n.InstanceUUID != nil && !store.IsUUID(*n.InstanceUUID) {
		return badRequest("Expected a UUID for instance_uuid but received %s.", *n.InstanceUUID)
	}
	if n.ChassisUUID, err = optStr("chassis_uuid", 36); err != nil {
		return err
	}
	if n.ResourceClass, err = optStr("resource_class", 80); err != nil {
		return err
	}
	if n.Description, err = optStr("description", 4096); err != nil {
		return err
	}
	for _, p := range []struct {
		k string
		d **string
	}{{"owner", &n.Owner}, {"lessee", &n.Lessee}, {"protected_reason", &n.ProtectedReason},
		{"retired_reason", &n.RetiredReason}, {"shard", &n.Shard}} {
		if *p.d, err = optStr(p.k, 255); err != nil {
			return err
		}
	}
	if n.ParentNode, err = optStr("parent_node", 36); err != nil {
		return err
	}
	cg, err := optStr("conductor_group", 255)
	if err != nil {
		return err
	}
	n.ConductorGroup = strings.ToLower(deref(cg))
	if n.Maintenance, err = boolean("maintenance"); err != nil {
		return err
	}
	if !n.Maintenance {
		n.MaintenanceReason = nil
		n.Fault = nil
	}
	if n.DisablePowerOff, err = boolean("disable_power_off"); err != nil {
		return err
	}
	if n.Protected, err = boolean("protected"); err != nil {
		return err
	}
	if !n.Protected && n.ProtectedReason != nil {
		return badRequest("Cannot set protected_reason when protected is unset")
	}
	if n.Retired, err = boolean("retired"); err != nil {
		return err
	}
	if !n.Retired && n.RetiredReason != nil {
		return badRequest("Cannot set retired_reason when retired is unset")
	}
	if val, ok := body["automated_clean"]; ok && val != nil {
		b, ok := val.(bool)
		if !ok {
			return typeErr("automated_clean", val, "boolean")
		}
		n.AutomatedClean = &b
	} else {
		n.AutomatedClean = nil
	}
	if d, ok := body["driver"].(string); ok {
		n.Driver = d
	}
	ifaces := map[string]string{}
	for _, kind := range driver.InterfaceKinds {
		val, ok := body[kind+"_interface"]
		if !ok || val == nil {
			ifaces[kind] = ht.Interfaces[kind].Default
			continue
		}
		impl, ok := val.(string)
		if !ok {
			return typeErr(kind+"_interface", val, "string")
		}
		if !ht.Accepts(kind, impl) {
			return badRequest("Could not find the following interface in the 'ironic.hardware.interfaces.%s' entrypoint: %s. Valid interfaces are %v.", kind, impl, ht.Interfaces[kind].Enabled)
		}
		ifaces[kind] = impl
	}
	n.Interfaces = ifaces
	return nil
}

// nodeDoc is the patchable view of a node (real values, secrets included).
func nodeDoc(n *store.Node) map[string]any {
	doc := map[string]any{
		"name": strPtr(n.Name), "driver": n.Driver, "driver_info": cloneAny(objOrEmpty(n.DriverInfo)),
		"properties": cloneAny(objOrEmpty(n.Properties)), "extra": cloneAny(objOrEmpty(n.Extra)),
		"instance_info": cloneAny(objOrEmpty(n.InstanceInfo)), "network_data": cloneAny(objOrEmpty(n.NetworkData)),
		"instance_uuid": strPtr(n.InstanceUUID), "chassis_uuid": strPtr(n.ChassisUUID),
		"resource_class": strPtr(n.ResourceClass), "description": strPtr(n.Description),
		"owner": strPtr(n.Owner), "lessee": strPtr(n.Lessee), "protected": n.Protected,
		"protected_reason": strPtr(n.ProtectedReason), "retired": n.Retired, "retired_reason": strPtr(n.RetiredReason),
		"shard": strPtr(n.Shard), "parent_node": strPtr(n.ParentNode), "conductor_group": n.ConductorGroup,
		"maintenance": n.Maintenance, "disable_power_off": n.DisablePowerOff,
	}
	if n.AutomatedClean != nil {
		doc["automated_clean"] = *n.AutomatedClean
	} else {
		doc["automated_clean"] = nil
	}
	for _, kind := range driver.InterfaceKinds {
		if impl, ok := n.Interfaces[kind]; ok {
			doc[kind+"_interface"] = impl
		} else {
			doc[kind+"_interface"] = nil
		}
	}
	return doc
}

// nodeChildren lists the UUIDs of the nodes whose parent is the node (1.83).
func (s *Server) nodeChildren(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	children := []string{}
	for _, ch := range s.st.Nodes(func(x *store.Node) bool { return deref(x.ParentNode) == n.UUID }) {
		children = append(children, ch.UUID)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"children": children,
		"links":    map[string]string{"href": baseURL(c) + "/v1/nodes?parent_node=" + n.UUID, "rel": "children"},
	})
}

func (s *Server) deleteNode(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return notFound("Node %s could not be found.", c.Param("node"))
		}
		if n.Protected {
			return errf(http.StatusForbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted", n.UUID)
		}
		if n.Reservation != nil {
			return conflict("Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, *n.Reservation)
		}
		if !n.Maintenance {
			if n.InstanceUUID != nil {
				return conflict("Node %s is associated with instance %s.", n.UUID, *n.InstanceUUID)
			}
			if !slices.Contains(deleteAllowed, n.ProvisionState) {
				return conflict("Can not delete node \"%s\" while it is in provision state \"%s\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode", n.UUID, n.ProvisionState)
			}
		}
		for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }) {
			if err := tx.DeletePort(p.UUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for _, v := range s.st.VolumeConnectors(func(v *store.VolumeConnector) bool { return v.NodeUUID == n.UUID }) {
			if err := tx.DeleteVolumeConnector(v.UUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for _, v := range s.st.VolumeTargets(func(v *store.VolumeTarget) bool { return v.NodeUUID == n.UUID }) {
			if err := tx.DeleteVolumeTarget(v.UUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for _, pg := range s.st.Portgroups(func(p *store.Portgroup) bool { return p.NodeUUID == n.UUID }) {
			if err := tx.DeletePortgroup(pg.UUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if n.AllocationUUID != nil {
			if err := tx.DeleteAllocation(*n.AllocationUUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return tx.DeleteNode(n.UUID)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// updateNode runs a read-modify-write on a node in one transaction
// (metadata updates take no lock; the store re-runs a transaction that
// loses a race).
func (s *Server) updateNode(c echo.Context, uuid string, fn func(*store.Node) error) error {
	return s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return notFound("Node %s could not be found.", uuid)
		}
		if err := fn(n); err != nil {
			return err
		}
		return tx.PutNode(n)
	})
}

func (s *Server) inventory(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	if len(n.Inventory) == 0 {
		return notFound("Inventory not found for node %s.", n.UUID)
	}
	plugin := json.RawMessage("{}")
	if len(n.PluginData) > 0 {
		plugin = n.PluginData
	}
	return c.JSON(http.StatusOK, map[string]any{"inventory": n.Inventory, "plugin_data": plugin})
}
