package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/redact"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Volume connectors and targets (API 1.32), the records of boot from
// volume, as Ironic keeps them: CRUD with Ironic's checks (the node must
// exist; changes and deletions only while the node is powered off, or,
// for deletions, enroll/manageable/adopt failed), unique type+connector_id
// and per-node boot_index. No storage interface here attaches volumes
// (nodes have storage_interface noop), so they are records only.

var connectorFields = []field[*store.VolumeConnector]{
	{"uuid", 32, func(_ echo.Context, v *store.VolumeConnector) any { return v.UUID }},
	{"node_uuid", 32, func(_ echo.Context, v *store.VolumeConnector) any { return v.NodeUUID }},
	{"type", 32, func(_ echo.Context, v *store.VolumeConnector) any { return v.Type }},
	{"connector_id", 32, func(_ echo.Context, v *store.VolumeConnector) any { return v.ConnectorID }},
	{"extra", 32, func(_ echo.Context, v *store.VolumeConnector) any { return objOrEmpty(v.Extra) }},
	{"created_at", 32, func(_ echo.Context, v *store.VolumeConnector) any { return ironicTime(v.CreatedAt) }},
	{"updated_at", 32, func(_ echo.Context, v *store.VolumeConnector) any { return timePtr(v.UpdatedAt) }},
	{"links", 32, func(c echo.Context, v *store.VolumeConnector) any { return links(c, "volume/connectors", v.UUID) }},
}

var targetFields = []field[*store.VolumeTarget]{
	{"uuid", 32, func(_ echo.Context, v *store.VolumeTarget) any { return v.UUID }},
	{"node_uuid", 32, func(_ echo.Context, v *store.VolumeTarget) any { return v.NodeUUID }},
	{"volume_type", 32, func(_ echo.Context, v *store.VolumeTarget) any { return v.VolumeType }},
	{"boot_index", 32, func(_ echo.Context, v *store.VolumeTarget) any { return v.BootIndex }},
	{"volume_id", 32, func(_ echo.Context, v *store.VolumeTarget) any { return v.VolumeID }},
	{"properties", 32, func(_ echo.Context, v *store.VolumeTarget) any { return maskObject(v.Properties, redact.Key) }},
	{"extra", 32, func(_ echo.Context, v *store.VolumeTarget) any { return objOrEmpty(v.Extra) }},
	{"created_at", 32, func(_ echo.Context, v *store.VolumeTarget) any { return ironicTime(v.CreatedAt) }},
	{"updated_at", 32, func(_ echo.Context, v *store.VolumeTarget) any { return timePtr(v.UpdatedAt) }},
	{"links", 32, func(c echo.Context, v *store.VolumeTarget) any { return links(c, "volume/targets", v.UUID) }},
}

var connectorSortKeys = map[string]func(a, b *store.VolumeConnector) int{
	"id":           func(a, b *store.VolumeConnector) int { return cmpInt(a.ID, b.ID) },
	"uuid":         func(a, b *store.VolumeConnector) int { return strings.Compare(a.UUID, b.UUID) },
	"type":         func(a, b *store.VolumeConnector) int { return strings.Compare(a.Type, b.Type) },
	"connector_id": func(a, b *store.VolumeConnector) int { return strings.Compare(a.ConnectorID, b.ConnectorID) },
	"created_at":   func(a, b *store.VolumeConnector) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

var targetSortKeys = map[string]func(a, b *store.VolumeTarget) int{
	"id":          func(a, b *store.VolumeTarget) int { return cmpInt(a.ID, b.ID) },
	"uuid":        func(a, b *store.VolumeTarget) int { return strings.Compare(a.UUID, b.UUID) },
	"volume_type": func(a, b *store.VolumeTarget) int { return strings.Compare(a.VolumeType, b.VolumeType) },
	"volume_id":   func(a, b *store.VolumeTarget) int { return strings.Compare(a.VolumeID, b.VolumeID) },
	"boot_index":  func(a, b *store.VolumeTarget) int { return cmpInt(a.BootIndex, b.BootIndex) },
	"created_at":  func(a, b *store.VolumeTarget) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

var (
	connectorPatchable = []string{"connector_id", "extra", "node_uuid", "type"}
	targetPatchable    = []string{"boot_index", "extra", "node_uuid", "properties", "volume_id", "volume_type"}
)

func (s *Server) volumeRoutes(g *echo.Group) {
	v := g.Group("", s.minVer(32, false))
	v.GET("/volume", s.volumeRoot)
	v.GET("/volume/", s.volumeRoot)
	v.GET("/volume/connectors", s.listConnectors)
	v.GET("/volume/connectors/", s.listConnectors)
	v.POST("/volume/connectors", s.createConnector)
	v.POST("/volume/connectors/", s.createConnector)
	v.GET("/volume/connectors/:id", s.getConnector)
	v.PATCH("/volume/connectors/:id", s.patchConnector)
	v.DELETE("/volume/connectors/:id", s.deleteConnector)
	v.GET("/volume/targets", s.listTargets)
	v.GET("/volume/targets/", s.listTargets)
	v.POST("/volume/targets", s.createTarget)
	v.POST("/volume/targets/", s.createTarget)
	v.GET("/volume/targets/:id", s.getTarget)
	v.PATCH("/volume/targets/:id", s.patchTarget)
	v.DELETE("/volume/targets/:id", s.deleteTarget)
	v.GET("/nodes/:node/volume", s.volumeRoot)
	v.GET("/nodes/:node/volume/connectors", s.listConnectors)
	v.GET("/nodes/:node/volume/targets", s.listTargets)
	malformed := func(echo.Context) error { return badRequest("Malformed request URI.") }
	v.POST("/nodes/:node/volume/connectors", malformed)
	v.POST("/nodes/:node/volume/targets", malformed)
}

// volumeRoot is the volume resource (or a node's): links to its connectors
// and targets.
func (s *Server) volumeRoot(c echo.Context) error {
	base := baseURL(c)
	prefix, bookmark := base+"/v1/volume/", base+"/volume/"
	if ident := c.Param("node"); ident != "" {
		if _, err := s.findNode(c, ident); err != nil {
			return err
		}
		prefix, bookmark = base+"/v1/nodes/"+ident+"/volume/", base+"/nodes/"+ident+"/volume/"
	}
	link := func(sub string) []map[string]string {
		return []map[string]string{{"href": prefix + sub, "rel": "self"}, {"href": bookmark + sub, "rel": "bookmark"}}
	}
	return c.JSON(http.StatusOK, map[string]any{"links": link(""), "connectors": link("connectors"), "targets": link("targets")})
}

// volumeList is the shared listing of connectors and targets: the node
// (path or ?node=), detail or fields, paging.
func volumeList[T any](s *Server, c echo.Context, kind string, fields []field[T], keys map[string]func(a, b T) int,
	defaults []string, all func(node string) []T, key func(T) string, byMarker func(string) (T, error)) error {
	v := ver(c)
	q := c.QueryParams()
	dflt := map[string]bool{"links": true}
	for _, f := range defaults {
		dflt[f] = true
	}
	want, ferr := listWant(c, fields, dflt, "Can't fetch a subset of fields with 'detail' set")
	if ferr != nil {
		return ferr
	}
	node := ""
	ident := c.Param("node")
	if ident == "" {
		ident = q.Get("node")
	}
	if ident != "" {
		n, err := s.findNode(c, ident)
		if err != nil {
			return err
		}
		node = n.UUID
	}
	page, perr := parsePaging(c, keys, map[string]bool{"extra": true, "properties": true}, nil)
	if perr != nil {
		return perr
	}
	items, next, perr := paginate(c, all(node), page, keys, key, byMarker)
	if perr != nil {
		return perr
	}
	out := make([]map[string]any, len(items))
	for i, x := range items {
		out[i] = render(c, fields, x, v, want)
	}
	return c.JSON(http.StatusOK, collection(kind, out, next))
}

func (s *Server) listConnectors(c echo.Context) error {
	inScope, serr := s.volumeScope(c) // a project's nodes only (access.go)
	if serr != nil {
		return serr
	}
	return volumeList(s, c, "connectors", connectorFields, connectorSortKeys, []string{"uuid", "node_uuid", "type", "connector_id"},
		func(node string) []*store.VolumeConnector {
			return s.st.VolumeConnectors(func(v *store.VolumeConnector) bool { return (node == "" || v.NodeUUID == node) && inScope(v.NodeUUID) })
		},
		func(v *store.VolumeConnector) string { return v.UUID },
		func(id string) (*store.VolumeConnector, error) { return s.st.VolumeConnector(id) })
}

func (s *Server) listTargets(c echo.Context) error {
	inScope, serr := s.volumeScope(c) // a project's nodes only (access.go)
	if serr != nil {
		return serr
	}
	return volumeList(s, c, "targets", targetFields, targetSortKeys, []string{"uuid", "node_uuid", "volume_type", "boot_index", "volume_id"},
		func(node string) []*store.VolumeTarget {
			return s.st.VolumeTargets(func(v *store.VolumeTarget) bool { return (node == "" || v.NodeUUID == node) && inScope(v.NodeUUID) })
		},
		func(v *store.VolumeTarget) string { return v.UUID },
		func(id string) (*store.VolumeTarget, error) { return s.st.VolumeTarget(id) })
}

func (s *Server) findConnector(id string) (*store.VolumeConnector, error) {
	v, err := s.st.VolumeConnector(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Volume connector %s could not be found.", id)
	}
	return v, err
}

func (s *Server) findTarget(id string) (*store.VolumeTarget, error) {
	v, err := s.st.VolumeTarget(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Volume target %s could not be found.", id)
	}
	return v, err
}

func (s *Server) getConnector(c echo.Context) error {
	v, err := s.findConnector(c.Param("id"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(connectorFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, connectorFields, v, ver(c), want))
}

func (s *Server) getTarget(c echo.Context) error {
	v, err := s.findTarget(c.Param("id"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(targetFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, targetFields, v, ver(c), want))
}

// volumeDoc checks a connector or target document (create body or patched
// record) against Ironic's schema: required properties, types, nothing
// else; node_uuid must name an existing node.
func (s *Server) volumeDoc(kind string, doc map[string]any, props map[string]string, required []string) (*store.Node, *Error) {
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := props[k]; !ok {
			return nil, badRequest("Schema error for %s: Additional properties are not allowed ('%s' was unexpected)", kind, k)
		}
	}
	for _, k := range required {
		if _, ok := doc[k]; !ok {
			return nil, badRequest("Schema error for %s: '%s' is a required property", kind, k)
		}
	}
	for _, k := range keys {
		val := doc[k]
		ok := true
		switch props[k] {
		case "string":
			_, ok = val.(string)
		case "string|null":
			_, isStr := val.(string)
			ok = isStr || val == nil
		case "object|null":
			_, isObj := val.(map[string]any)
			ok = isObj || val == nil
		case "integer":
			f, isNum := val.(float64)
			ok = isNum && f == float64(int64(f))
		}
		if !ok {
			return nil, badRequest("Schema error for %s: %s is not of type '%s'", kind, python.Repr(val), strings.ReplaceAll(props[k], "|", "', '"))
		}
	}
	for _, k := range keys {
		if str, ok := doc[k].(string); ok && volumeMaxLen[k] > 0 && utf8.RuneCountInString(str) > volumeMaxLen[k] {
			return nil, badRequest("Schema error for %s: %s is too long", kind, python.Repr(str))
		}
	}
	if t, ok := doc["type"].(string); ok && props["type"] != "" && !slices.Contains(connectorTypes, t) {
		return nil, badRequest("Schema error for %s: %s is not one of ['%s']", kind, python.Repr(t), strings.Join(connectorTypes, "', '"))
	}
	if u, _ := doc["uuid"].(string); u != "" && !store.IsUUID(u) {
		return nil, badRequest("Expected UUID for uuid: %s", truncate(u, python.MaxRepr))
	}
	nu, _ := doc["node_uuid"].(string)
	if !store.IsUUID(nu) {
		return nil, badRequest("Expected UUID for node_uuid: %s", truncate(nu, python.MaxRepr))
	}
	n, err := s.st.Node(nu)
	if err != nil {
		return nil, badRequest("Invalid input for field/attribute node_uuid. Value: '%s'. ", nu)
	}
	return n, nil
}

// volumeMaxLen are the lengths of Ironic's database columns, checked
// before a value reaches the store (Ironic's database refuses longer).
var volumeMaxLen = map[string]int{"type": 32, "connector_id": 255, "volume_type": 64, "volume_id": 36}

// connectorTypes are the connector types Ironic's clients offer (and its
// storage interfaces read).
var connectorTypes = []string{"iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup"}

var connectorProps = map[string]string{"connector_id": "string", "extra": "object|null", "node_uuid": "string", "type": "string", "uuid": "string|null"}
var targetProps = map[string]string{"boot_index": "integer", "extra": "object|null", "node_uuid": "string", "properties": "object|null",
	"volume_id": "string", "volume_type": "string", "uuid": "string|null"}

func connectorWriteError(err error, v *store.VolumeConnector) error {
	if v == nil {
		return err
	}
	var de *store.DuplicateError
	if errors.As(err, &de) {
		return conflict("A volume connector with type %s and connector ID %s already exists.", v.Type, v.ConnectorID)
	}
	if errors.Is(err, store.ErrDuplicate) {
		return conflict("A volume connector with UUID %s already exists.", v.UUID)
	}
	return err
}

func targetWriteError(err error, v *store.VolumeTarget) error {
	if v == nil {
		return err
	}
	var de *store.DuplicateError
	if errors.As(err, &de) {
		return conflict("A volume target with boot index '%d' for the same node already exists.", v.BootIndex)
	}
	if errors.Is(err, store.ErrDuplicate) {
		return conflict("A volume target with UUID %s already exists.", v.UUID)
	}
	return err
}

func (s *Server) createConnector(c echo.Context) error {
	body, _, err := readJSONObject(c, "connector")
	if err != nil {
		return err
	}
	n, e := s.volumeDoc("connector", body, connectorProps, []string{"connector_id", "node_uuid", "type"})
	if e != nil {
		return e
	}
	v := &store.VolumeConnector{UUID: uuid.NewString(), NodeUUID: n.UUID, Extra: store.Object{}}
	if u, _ := body["uuid"].(string); u != "" {
		v.UUID = store.CanonicalUUID(u)
	}
	v.Type, _ = body["type"].(string)
	v.ConnectorID, _ = body["connector_id"].(string)
	if x, ok := body["extra"].(map[string]any); ok {
		v.Extra = x
	}
	if _, err := s.st.VolumeConnector(v.UUID); err == nil {
		return conflict("A volume connector with UUID %s already exists.", v.UUID)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutVolumeConnector(v) }); err != nil {
		return connectorWriteError(err, v)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/volume/connectors/"+v.UUID)
	return c.JSON(http.StatusCreated, render(c, connectorFields, v, ver(c), nil))
}

func (s *Server) createTarget(c echo.Context) error {
	body, _, err := readJSONObject(c, "target")
	if err != nil {
		return err
	}
	n, e := s.volumeDoc("target", body, targetProps, []string{"boot_index", "node_uuid", "volume_id", "volume_type"})
	if e != nil {
		return e
	}
	v := &store.VolumeTarget{UUID: uuid.NewString(), NodeUUID: n.UUID, Extra: store.Object{}, Properties: store.Object{}}
	if u, _ := body["uuid"].(string); u != "" {
		v.UUID = store.CanonicalUUID(u)
	}
	fillTarget(v, body)
	if _, err := s.st.VolumeTarget(v.UUID); err == nil {
		return conflict("A volume target with UUID %s already exists.", v.UUID)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutVolumeTarget(v) }); err != nil {
		return targetWriteError(err, v)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/volume/targets/"+v.UUID)
	return c.JSON(http.StatusCreated, render(c, targetFields, v, ver(c), nil))
}

func fillTarget(v *store.VolumeTarget, doc map[string]any) {
	v.VolumeType, _ = doc["volume_type"].(string)
	v.VolumeID, _ = doc["volume_id"].(string)
	if f, ok := doc["boot_index"].(float64); ok {
		v.BootIndex = int64(f)
	}
	v.Extra, v.Properties = store.Object{}, store.Object{}
	if x, ok := doc["extra"].(map[string]any); ok {
		v.Extra = x
	}
	if x, ok := doc["properties"].(map[string]any); ok {
		v.Properties = x
	}
}

// volumeChangeAllowed is the conductor's check before a change (update:
// the node powered off) or a deletion (also enroll, manageable, adopt
// failed), with Ironic's InvalidStateRequested message.
func volumeChangeAllowed(n *store.Node, action string, deletion bool) *Error {
	if deletion && slices.Contains([]string{"manageable", "enroll", "adopt failed"}, n.ProvisionState) {
		return nil
	}
	if deref(n.PowerState) != "power off" {
		return badRequest("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", action, n.UUID, deref(n.PowerState))
	}
	return nil
}

// patchVolume applies a JSON patch to a record's document; node_uuid
// values must be UUIDs.
func patchVolume(c echo.Context, patchable []string, doc map[string]any) *Error {
	ops, err := readPatch(c, patchable)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return badRequest("%v", err)
	}
	for _, op := range ops {
		if op.Root() == "node_uuid" && (op.Op == "add" || op.Op == "replace") {
			var u any
			_ = json.Unmarshal(op.Value, &u)
			if str, _ := u.(string); !store.IsUUID(str) {
				return badRequest("Expected a UUID for node_uuid, but received %s.", fmt.Sprint(u))
			}
		}
	}
	return applyPatch(doc, ops)
}

func (s *Server) patchConnector(c echo.Context) error {
	v0, err := s.findConnector(c.Param("id"))
	if err != nil {
		return err
	}
	doc := map[string]any{"uuid": v0.UUID, "node_uuid": v0.NodeUUID, "type": v0.Type, "connector_id": v0.ConnectorID, "extra": cloneAny(objOrEmpty(v0.Extra))}
	if e := patchVolume(c, connectorPatchable, doc); e != nil {
		return e
	}
	n, e := s.volumeDoc("patch", doc, connectorProps, []string{"connector_id", "node_uuid", "type"})
	if e != nil {
		return e
	}
	if e := volumeChangeAllowed(n, "volume connector update", false); e != nil {
		return e
	}
	var out *store.VolumeConnector
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		v, err := tx.VolumeConnector(v0.UUID)
		if err != nil {
			return err
		}
		v.NodeUUID = n.UUID
		v.Type, _ = doc["type"].(string)
		v.ConnectorID, _ = doc["connector_id"].(string)
		v.Extra, _ = doc["extra"].(map[string]any)
		out = v
		return tx.PutVolumeConnector(v)
	})
	if err != nil {
		return connectorWriteError(err, out)
	}
	return c.JSON(http.StatusOK, render(c, connectorFields, out, ver(c), nil))
}

func (s *Server) patchTarget(c echo.Context) error {
	v0, err := s.findTarget(c.Param("id"))
	if err != nil {
		return err
	}
	doc := map[string]any{"uuid": v0.UUID, "node_uuid": v0.NodeUUID, "volume_type": v0.VolumeType, "volume_id": v0.VolumeID,
		"boot_index": float64(v0.BootIndex), "extra": cloneAny(objOrEmpty(v0.Extra)), "properties": cloneAny(objOrEmpty(v0.Properties))}
	if e := patchVolume(c, targetPatchable, doc); e != nil {
		return e
	}
	n, e := s.volumeDoc("patch", doc, targetProps, []string{"boot_index", "node_uuid", "volume_id", "volume_type"})
	if e != nil {
		return e
	}
	if e := volumeChangeAllowed(n, "volume target update", false); e != nil {
		return e
	}
	var out *store.VolumeTarget
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		v, err := tx.VolumeTarget(v0.UUID)
		if err != nil {
			return err
		}
		v.NodeUUID = n.UUID
		fillTarget(v, doc)
		out = v
		return tx.PutVolumeTarget(v)
	})
	if err != nil {
		return targetWriteError(err, out)
	}
	return c.JSON(http.StatusOK, render(c, targetFields, out, ver(c), nil))
}

func (s *Server) deleteConnector(c echo.Context) error {
	v, err := s.findConnector(c.Param("id"))
	if err != nil {
		return err
	}
	n, err := s.findNode(c, v.NodeUUID)
	if err != nil {
		return err
	}
	if e := volumeChangeAllowed(n, "volume connector deletion", true); e != nil {
		return e
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeleteVolumeConnector(v.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteTarget(c echo.Context) error {
	v, err := s.findTarget(c.Param("id"))
	if err != nil {
		return err
	}
	n, err := s.findNode(c, v.NodeUUID)
	if err != nil {
		return err
	}
	if e := volumeChangeAllowed(n, "volume target deletion", true); e != nil {
		return e
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeleteVolumeTarget(v.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
