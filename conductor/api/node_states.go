package api

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// stateAccepted answers a state change the manager took: 202 with the
// node's states as Location, or the manager's error.
func stateAccepted(c echo.Context, err error) error {
	if err != nil {
		return mgrError(err)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/nodes/"+c.Param("node")+"/states")
	return c.NoContent(http.StatusAccepted)
}

func (s *Server) nodeStates(c echo.Context, n *store.Node) error {
	v := ver(c)
	doc := map[string]any{
		"console_enabled": n.ConsoleEnabled, "last_error": maskedStr(n.LastError), "power_state": strPtr(n.PowerState),
		"provision_state": showState(v, n.ProvisionState), "provision_updated_at": timePtr(n.ProvisionUpdatedAt),
		"target_power_state": strPtr(n.TargetPowerState), "target_provision_state": nil,
	}
	if n.TargetProvisionState != nil {
		doc["target_provision_state"] = showState(v, *n.TargetProvisionState)
	}
	if v >= 12 {
		doc["raid_config"] = objOrEmpty(n.RAIDConfig)
		doc["target_raid_config"] = objOrEmpty(n.TargetRAIDConfig)
	}
	if v >= 75 {
		doc["boot_mode"] = strPtr(n.BootMode)
		doc["secure_boot"] = nil
		if n.SecureBoot != nil {
			doc["secure_boot"] = *n.SecureBoot
		}
	}
	return c.JSON(http.StatusOK, doc)
}

func (s *Server) provision(c echo.Context, n *store.Node) error {
	body, raw, err := readJSONObject(c, "provision")
	if err != nil {
		return err
	}
	var req manager.ProvisionRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return badRequest("Invalid provision request: %v", err)
	}
	if _, ok := body["target"]; !ok {
		return badRequest("Missing mandatory parameter: target")
	}
	if e := ironichttp.ArgString("target", body["target"]); e != nil {
		return e
	}
	req.Version = int(ver(c))
	if err := checkDisableRamdisk(req, ver(c)); err != nil {
		return err
	}
	return stateAccepted(c, s.mgr.Provision(c.Request().Context(), n.UUID, req))
}

// checkDisableRamdisk takes disable_ramdisk only with manual cleaning
// (1.70) or servicing (1.108), as Ironic's check_allow_disable_ramdisk.
func checkDisableRamdisk(req manager.ProvisionRequest, v Version) *Error {
	if req.DisableRamdisk == nil {
		return nil
	}
	min := map[string]Version{"clean": 70, "service": 108}[req.Target]
	if min == 0 {
		return badRequest("disable_ramdisk is supported only with manual cleaning or servicing")
	}
	if v < min {
		return notAcceptable("disable_ramdisk is not acceptable in this API version")
	}
	return nil
}

func (s *Server) power(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "power")
	if err != nil {
		return err
	}
	target, _ := body["target"].(string)
	timeout := 0
	if t, ok := body["timeout"]; ok && t != nil {
		if ver(c) < 27 {
			return notAcceptable("The timeout parameter is not supported by version %s.", ver(c))
		}
		i, e := ironichttp.ArgInt("timeout", t)
		if e != nil {
			return e
		}
		if *i < 1 {
			return badRequest("timeout has to be positive integer")
		}
		timeout = int(min(*i, 1<<31))
	}
	switch target {
	case driver.TargetPowerOn, driver.TargetPowerOff, driver.TargetReboot:
	case driver.TargetSoftPowerOff, driver.TargetSoftReboot:
		if ver(c) < 27 {
			return notAcceptable("The target %s is not supported by version %s.", target, ver(c))
		}
	default:
		return badRequest("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", target, c.Param("node"), pyStr(n.PowerState))
	}
	return stateAccepted(c, s.mgr.SetPowerState(c.Request().Context(), n.UUID, target, timeout))
}

func (s *Server) setRAID(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "raid")
	if err != nil {
		return err
	}
	if err := s.mgr.CheckRAIDConfig(n, body); err != nil {
		return mgrError(err)
	}
	err = s.updateNode(c, n.UUID, func(n *store.Node) error {
		n.TargetRAIDConfig = body
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) setMaintenance(on bool) nodeHandler {
	return func(c echo.Context, n *store.Node) error {
		var reason *string
		if on && c.Request().ContentLength != 0 {
			body, _, err := readJSONObject(c, "maintenance")
			if err != nil && c.Request().ContentLength > 0 {
				return err
			}
			switch r := body["reason"].(type) {
			case string:
				reason = &r
			case nil:
			default:
				// Ironic validates the argument as a string.
				return badRequest("Expected string for reason: %s", python.Repr(r))
			}
		}
		err := s.updateNode(c, n.UUID, func(n *store.Node) error {
			n.Maintenance = on
			n.MaintenanceReason = reason
			if !on {
				n.Fault = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		return c.NoContent(http.StatusAccepted)
	}
}

func (s *Server) validate(c echo.Context, n *store.Node) error {
	res, err := s.mgr.Validate(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	out := map[string]any{}
	for k, r := range res {
		// Ironic validates the non-vendor interfaces only; firmware from 1.86.
		if k == "vendor" || k == "firmware" && ver(c) < 86 {
			continue
		}
		m := map[string]any{"result": r.Result}
		if r.Reason != "" {
			m["reason"] = r.Reason
		}
		out[k] = m
	}
	return c.JSON(http.StatusOK, out)
}

var bootDevices = []string{"pxe", "disk", "cdrom", "bios", "safe", "wanboot", "iscsiboot", "floppy", "uefihttp"}

func (s *Server) getBootDevice(c echo.Context, n *store.Node) error {
	dev, persistent, err := s.mgr.BootDevice(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	var d any
	if dev != "" {
		d = dev
	}
	var p any
	if persistent != nil {
		p = *persistent
	}
	return c.JSON(http.StatusOK, map[string]any{"boot_device": d, "persistent": p})
}

func (s *Server) setBootDevice(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "boot_device")
	if err != nil {
		return err
	}
	if e := ironichttp.ArgString("boot_device", body["boot_device"]); e != nil {
		return e
	}
	pb, e := ironichttp.ArgBool("persistent", body["persistent"])
	if e != nil {
		return e
	}
	persistent := pb != nil && *pb
	dev, _ := body["boot_device"].(string)
	if !slices.Contains(bootDevices, dev) {
		return badRequest("Invalid boot device %s specified.", python.Cut(dev))
	}
	if err := s.mgr.SetBootDevice(c.Request().Context(), n.UUID, dev, persistent); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) supportedBootDevices(c echo.Context, n *store.Node) error {
	devs, err := s.mgr.SupportedBootDevices(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"supported_boot_devices": devs})
}
