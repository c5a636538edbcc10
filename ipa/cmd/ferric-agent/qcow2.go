package main

import "github.com/ferric-metal/ferric/ipa/internal/image"

// qcow2Converter returns the qcow2 converter compiled into this agent, or
// nil until images/qcow2 is available.
func qcow2Converter() image.QCOW2Converter { return nil }
