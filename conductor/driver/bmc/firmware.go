package bmc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.FirmwareUpdater = (*Redfish)(nil)

// UpdateFirmware implements driver.FirmwareUpdater with the service's
// UpdateService.SimpleUpdate aimed at the node's system. A BMC that runs
// the update as a task (202 and a task monitor in Location) is followed
// until the task ends, as sushy follows it for Ironic.
func (d *Redfish) UpdateFirmware(ctx context.Context, n *driver.Node, url string) error {
	return d.withSystem(ctx, n, "firmware update", func(sys *redfish.ComputerSystem) error {
		c := sys.GetClient()
		root, err := gofish.ServiceRoot(c)
		if err != nil {
			return fmt.Errorf("bmc: firmware update: %s", cleanErr(err))
		}
		us, err := root.UpdateService()
		if err != nil {
			return fmt.Errorf("bmc: firmware update: the BMC has no UpdateService: %s", cleanErr(err))
		}
		target, err := simpleUpdateTarget(c, us.ODataID)
		if err != nil {
			return err
		}
		resp, err := c.Post(target, &redfish.SimpleUpdateParameters{ImageURI: url, Targets: []string{sys.ODataID}})
		if err != nil {
			return fmt.Errorf("bmc: firmware update from %s: %s", url, cleanErr(err))
		}
		monitor := resp.Header.Get("Location")
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || monitor == "" {
			return nil
		}
		for {
			select {
			case <-ctx.Done():
				return fmt.Errorf("bmc: firmware update from %s: task %s did not end: %w", url, monitor, ctx.Err())
			case <-time.After(2 * time.Second):
			}
			r, err := c.Get(monitor)
			if err != nil {
				return fmt.Errorf("bmc: firmware update from %s: task %s: %s", url, monitor, cleanErr(err))
			}
			var task struct{ TaskState string }
			_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&task)
			r.Body.Close()
			switch {
			case r.StatusCode == http.StatusAccepted || task.TaskState == "Running" || task.TaskState == "New" || task.TaskState == "Pending":
			case task.TaskState == "" || task.TaskState == "Completed":
				return nil
			default:
				return fmt.Errorf("bmc: firmware update from %s: task %s ended %s", url, monitor, task.TaskState)
			}
		}
	})
}

// simpleUpdateTarget reads the SimpleUpdate action's target from the
// UpdateService resource.
func simpleUpdateTarget(c interface {
	Get(string) (*http.Response, error)
}, service string) (string, error) {
	r, err := c.Get(service)
	if err != nil {
		return "", fmt.Errorf("bmc: firmware update: %s", cleanErr(err))
	}
	defer r.Body.Close()
	var doc struct {
		Actions map[string]struct {
			Target string `json:"target"`
		}
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("bmc: firmware update: UpdateService: %w", err)
	}
	t := doc.Actions["#UpdateService.SimpleUpdate"].Target
	if t == "" {
		return "", fmt.Errorf("bmc: firmware update: the BMC's UpdateService has no SimpleUpdate action: %w", driver.ErrUnsupported)
	}
	return t, nil
}
