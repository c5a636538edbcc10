package bmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// The ipmitool vendor interface: send_raw and bmc_reset, as Ironic's. Raw
// bytes go through the ipmitool binary (bmclib has no raw command); the
// password through the environment (-E), never the command line.

var _ driver.Vendor = (*IPMI)(nil)

var ipmiVendorMethods = map[string]driver.VendorMethod{
	"send_raw": {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
		Description: "Send raw bytes to the BMC. Required argument: 'raw_bytes' - a string of raw bytes (e.g. '0x00 0x01')."},
	"bmc_reset": {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
		Description: "Reset the BMC. Required argument: 'warm' (Boolean) - for warm (True) or cold (False) reset."},
}

// Methods lists the ipmitool vendor methods.
func (d *IPMI) Methods() map[string]driver.VendorMethod { return ipmiVendorMethods }

// rawByte is one byte of a raw IPMI request: 0x-prefixed hex or decimal.
var rawByte = regexp.MustCompile(`^(0[xX][0-9a-fA-F]{1,2}|[0-9]{1,3})$`)

func rawBytes(args map[string]any) ([]string, error) {
	s, _ := args["raw_bytes"].(string)
	f := strings.Fields(s)
	if len(f) == 0 {
		//lint:ignore ST1005 Ironic's message, word for word
		return nil, errors.New("Parameter raw_bytes (string of bytes) was not specified.")
	}
	for _, b := range f {
		if !rawByte.MatchString(b) {
			return nil, fmt.Errorf("raw_bytes: %q is not a byte (0x00-0xff or 0-255)", b)
		}
		if !strings.HasPrefix(strings.ToLower(b), "0x") {
			if v, _ := strconv.Atoi(b); v > 255 {
				return nil, fmt.Errorf("raw_bytes: %q is not a byte (0x00-0xff or 0-255)", b)
			}
		}
	}
	if len(f) < 2 {
		return nil, errors.New("raw_bytes: at least a network function and a command are needed")
	}
	return f, nil
}

func warmArg(args map[string]any) (bool, error) {
	v, ok := args["warm"]
	if !ok {
		return true, nil
	}
	if b, ok := protocol.ParseBool(v); ok {
		return b, nil
	}
	return false, fmt.Errorf("warm must be a boolean, not %v", v)
}

// ValidateCall checks the node's IPMI driver_info and the method's
// arguments.
func (d *IPMI) ValidateCall(n *driver.Node, method string, args map[string]any) error {
	if _, err := parseIPMIInfo(n); err != nil {
		return err
	}
	switch method {
	case "send_raw":
		_, err := rawBytes(args)
		return err
	case "bmc_reset":
		_, err := warmArg(args)
		return err
	}
	return fmt.Errorf("bmc: no vendor method %s", method)
}

// Call runs a vendor method and returns ipmitool's output (send_raw).
func (d *IPMI) Call(ctx context.Context, n *driver.Node, method string, args map[string]any) (any, error) {
	if err := d.ValidateCall(n, method, args); err != nil {
		return nil, err
	}
	info, _ := parseIPMIInfo(n)
	var cmd []string
	switch method {
	case "send_raw":
		b, _ := rawBytes(args)
		cmd = append([]string{"raw"}, b...)
	case "bmc_reset":
		warm, _ := warmArg(args)
		kind := "cold"
		if warm {
			kind = "warm"
		}
		cmd = []string{"bmc", "reset", kind}
	}
	out, err := d.ipmitool(ctx, info, cmd...)
	d.cfg.Logger.Info("bmc: vendor passthru", "node", n.UUID, "bmc", info.addr(), "method", method, "output", out, "error", err)
	return out, err
}

// ipmitool runs one ipmitool command against the BMC within CallTimeout.
func (d *IPMI) ipmitool(ctx context.Context, info ipmiInfo, cmd ...string) (string, error) {
	bin := d.cfg.IPMIToolPath
	if bin == "" {
		bin = "ipmitool"
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	defer cancel()
	args := []string{"-I", "lanplus", "-H", info.host, "-p", strconv.Itoa(info.port), "-U", info.username, "-E"}
	if info.cipherSuite != "" {
		args = append(args, "-C", info.cipherSuite)
	}
	c := exec.CommandContext(ctx, bin, append(args, cmd...)...)
	c.Env = append(os.Environ(), "IPMI_PASSWORD="+info.password)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("bmc: %s did not answer within %s (ipmitool %s): %w", info.addr(), d.cfg.CallTimeout, strings.Join(cmd, " "), ErrNoAnswer)
		}
		return "", fmt.Errorf("bmc: %s: ipmitool %s: %v: %s", info.addr(), strings.Join(cmd, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
