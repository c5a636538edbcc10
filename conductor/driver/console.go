package driver

// SerialConsole is a console interface whose serial console the conductor
// serves on a TCP port (Ironic's socat consoles, console_info type
// "socat"): for each client, the conductor runs the attach command on a
// pseudo-terminal and relays it. The ipmitool-socat console implements it.
type SerialConsole interface {
	// ValidateConsole checks the driver_info the console needs.
	ValidateConsole(n *Node) error
	// ConsolePort is the TCP port the node's driver_info asks for
	// (ipmi_terminal_port); 0 lets the conductor take one from its
	// range.
	ConsolePort(n *Node) (int, error)
	// ConsoleCommands returns the command that attaches to the machine's
	// serial console (ipmitool sol activate) and the one that drops a
	// session left on the BMC (sol deactivate).
	ConsoleCommands(n *Node) (attach, detach Command, err error)
}

// Command is a program the conductor runs for a driver: its path,
// arguments and extra environment ("KEY=value"; secrets go there, never
// in the arguments).
type Command struct {
	Path string
	Args []string
	Env  []string
}
