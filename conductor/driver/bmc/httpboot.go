package bmc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// UEFI HTTP boot through Redfish, as Ironic's redfish-https boot sets it:
// the system's Boot gets BootSourceOverrideTarget UefiHttp, mode UEFI and
// the boot URL in HttpBootUri (gofish's SetBoot). gofish does not decode
// the Boot object's allowable targets, so they are read from the system's
// raw JSON here.

var _ driver.HTTPBooter = (*Redfish)(nil)

// SetHTTPBoot implements driver.HTTPBooter.
func (d *Redfish) SetHTTPBoot(ctx context.Context, n *driver.Node, url string, persistent bool) error {
	return d.withSystem(ctx, n, "setting the UEFI HTTP boot", func(sys *redfish.ComputerSystem) error {
		allowed, err := bootTargets(sys)
		if err != nil {
			return err
		}
		if allowed != nil && !slices.Contains(allowed, string(redfish.UefiHTTPBootSourceOverrideTarget)) {
			//lint:ignore ST1005 Ironic's UnsupportedHardwareFeature message
			return fmt.Errorf("Node %s hardware does not support feature UefiHttp boot, which is required.", n.UUID)
		}
		enabled := redfish.OnceBootSourceOverrideEnabled
		if persistent {
			enabled = redfish.ContinuousBootSourceOverrideEnabled
		}
		b := redfish.Boot{BootSourceOverrideTarget: redfish.UefiHTTPBootSourceOverrideTarget, BootSourceOverrideEnabled: enabled,
			BootSourceOverrideMode: redfish.UEFIBootSourceOverrideMode, HTTPBootURI: url}
		if err := sys.SetBoot(b); err != nil {
			return fmt.Errorf("bmc: setting the UEFI HTTP boot from %s: %s", url, bmcMessage(err))
		}
		d.cfg.Logger.InfoContext(ctx, "bmc: UEFI HTTP boot set", "node", n.UUID, "persistent", persistent)
		return nil
	})
}

// bootTargets reads the system's allowable boot override targets; nil
// when the BMC does not list them.
func bootTargets(sys *redfish.ComputerSystem) ([]string, error) {
	resp, err := sys.GetClient().Get(sys.ODataID)
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the system: %s", bmcMessage(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the system: %w", err)
	}
	var v struct {
		Boot struct {
			Targets []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("bmc: decoding the system: %w", err)
	}
	return v.Boot.Targets, nil
}
