// Package metal3 tests ferric with metal3's baremetal-operator (BMO): its
// own Ironic provisioner drives BareMetalHosts against a ferric conductor,
// as BMO's BareMetalHost controller does. It is a module of its own so
// that the main module does not depend on Kubernetes.
package metal3
