package bmc

import (
	"fmt"
	"strconv"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// KeyIPMITerminalPort is the driver_info key of the TCP port the node's
// serial console is served on.
const KeyIPMITerminalPort = "ipmi_terminal_port"

// IPMISocatConsole is Ironic's ipmitool-socat console interface: the
// machine's serial-over-LAN through `ipmitool -I lanplus ... sol activate`,
// which the conductor serves on a TCP port (package conductor/console).
// The password reaches ipmitool through its environment (-E), never its
// command line.
type IPMISocatConsole struct {
	// IPMIToolPath is the ipmitool binary; "" looks it up in $PATH.
	IPMIToolPath string
}

var _ driver.SerialConsole = (*IPMISocatConsole)(nil)

// ValidateConsole checks the ipmi driver_info and ipmi_terminal_port.
func (c *IPMISocatConsole) ValidateConsole(n *driver.Node) error {
	if _, err := parseIPMIInfo(n); err != nil {
		return err
	}
	_, err := c.ConsolePort(n)
	return err
}

// ConsolePort reads ipmi_terminal_port (0 when unset).
func (c *IPMISocatConsole) ConsolePort(n *driver.Node) (int, error) {
	p, ok := str(n.DriverInfo[KeyIPMITerminalPort])
	if !ok || p == "" {
		return 0, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		//lint:ignore ST1005 Ironic's InvalidParameterValue, word for word
		return 0, fmt.Errorf("%s \"%s\" is not a valid port.", KeyIPMITerminalPort, p)
	}
	return port, nil
}

// ConsoleCommands returns ipmitool's sol activate and sol deactivate for
// the node's BMC.
func (c *IPMISocatConsole) ConsoleCommands(n *driver.Node) (attach, detach driver.Command, err error) {
	info, err := parseIPMIInfo(n)
	if err != nil {
		return driver.Command{}, driver.Command{}, err
	}
	bin := c.IPMIToolPath
	if bin == "" {
		bin = "ipmitool"
	}
	args := []string{"-I", "lanplus", "-H", info.host, "-p", strconv.Itoa(info.port), "-U", info.username, "-E"}
	if info.cipherSuite != "" {
		args = append(args, "-C", info.cipherSuite)
	}
	env := []string{"IPMI_PASSWORD=" + info.password}
	attach = driver.Command{Path: bin, Args: append(append([]string{}, args...), "sol", "activate"), Env: env}
	detach = driver.Command{Path: bin, Args: append(append([]string{}, args...), "sol", "deactivate"), Env: env}
	return attach, detach, nil
}
