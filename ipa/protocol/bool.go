package protocol

import "strings"

// ParseBool reads a boolean argument as Ironic and IPA do (oslo's strict
// bool_from_string): a JSON boolean, 0 or 1, or one of the strings 1, t,
// true, on, y, yes, 0, f, false, off, n, no (any case). ok is false for
// anything else.
func ParseBool(v any) (b, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case int:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}
