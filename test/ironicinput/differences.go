package ironicinput

// Difference is a case where ferric answers other than Ironic 21.4 on
// purpose, with the reason.
type Difference struct {
	Ferric Answer
	Reason string
}

// Differences, by case name. Keep this list short: every entry is an
// answer a client of Ironic would not get from ferric.
var Differences = map[string]Difference{
	"port create pxe_enabled null": {
		Ferric: Answer{Status: 400, Fault: "Field `pxe_enabled' cannot be None"},
		Reason: "Ironic's port object refuses None with an unhandled error (500); the client's input is at fault, so 400 with the same text",
	},
}
