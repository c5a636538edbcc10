package bmc

import (
	"strconv"

	bmclib "github.com/bmc-toolbox/bmclib/v2"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// IPMI is Ironic's ipmi hardware type (power and management interfaces)
// through bmclib's ipmitool provider. ipmitool always runs with -I lanplus and
// gets the password from the environment, never from its command line.
type IPMI struct {
	core
}

// NewIPMI returns the ipmi power and management interfaces.
func NewIPMI(cfg Config) *IPMI {
	d := &IPMI{}
	d.cfg = cfg.withDefaults()
	d.hw = "ipmi"
	d.parse = d.target
	return d
}

var (
	_ driver.Power      = (*IPMI)(nil)
	_ driver.Management = (*IPMI)(nil)
)

func (d *IPMI) target(n *driver.Node) (target, error) {
	info, err := parseIPMIInfo(n)
	if err != nil {
		return target{}, err
	}
	opts := []bmclib.Option{bmclib.WithIpmitoolPort(strconv.Itoa(info.port))}
	if info.cipherSuite != "" {
		opts = append(opts, bmclib.WithIpmitoolCipherSuite(info.cipherSuite))
	}
	if d.cfg.IPMIToolPath != "" {
		opts = append(opts, bmclib.WithIpmitoolPath(d.cfg.IPMIToolPath))
	}
	return target{
		addr:     info.addr(),
		host:     info.host,
		user:     info.username,
		pass:     info.password,
		provider: ProviderIPMITool,
		opts:     opts,
		reboot:   rebootOffOn,
	}, nil
}
