# ferric — build, run and test. See README.md.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
CGO_ENABLED ?= 0
export CGO_ENABLED

.PHONY: all build run test deps vet fmt ramdisk lab lab-down bench bench-pxe bench-scale bench-heartbeat clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./conductor/cmd/... ./ipa/cmd/... ./test/cmd/...

# deps installs the Debian packages the conductor and the tests use (root).
deps:
	bash .ci/deps.sh

# run starts the conductor on embedded defaults: API on 127.0.0.1:6385, state under ./var/.
run: deps build
	@mkdir -p var
	./$(BIN)/ferric-conductor --api-listen 127.0.0.1:6385 --state-dir ./var

# test runs the whole test suite (unit, conformance, lab and end-to-end).
# The ramdisks, test OS image and binaries the tests boot are built once per
# run into FERRIC_ARTIFACTS_DIR (test/artifacts), shared by every package.
test: export FERRIC_ARTIFACTS_DIR ?= $(CURDIR)/$(BIN)/test-artifacts
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...
	# The conformance suite again, against a conductor whose store is etcd.
	FERRIC_TEST_STORE=etcd $(GO) test -count=1 -timeout 20m ./test/conformance/
	# metal3's baremetal-operator provisioner against ferric (its own module).
	cd test/metal3 && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...
	# The web console in Debian's chromium, headless (its own module: chromedp).
	cd test/ui && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# ramdisk builds the deploy kernel and initramfs (agent as /init) into bin/.
ramdisk:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/ferric-agent ./ipa/cmd/ferric-agent
	ipa/ramdisk/build.sh $(BIN)/ferric-agent $(BIN)

# lab starts QEMU machines behind virtual BMCs in a network namespace (root),
# and the conductor inside it with full DHCP, the machines enrolled
# (LAB_CONDUCTOR= for the machines alone; LAB_FIRMWARE=uefi for OVMF;
# LAB_DRIVER=redfish to enroll them through the Redfish emulator;
# LAB_BOOT=vmedia for virtual media boots on a network with no DHCP server,
# static addresses, through the Redfish emulator).
# See test/lab/README.md.
LAB_DIR ?= /tmp/ferric-lab
LAB_NETNS ?= ferriclab
LAB_MACHINES ?= 2
LAB_FIRMWARE ?= bios
LAB_DRIVER ?= ipmi
LAB_BOOT ?= pxe
LAB_CONDUCTOR ?= $(BIN)/ferric-conductor
lab: build ramdisk
	./$(BIN)/ferric-lab up -dir $(LAB_DIR) -netns $(LAB_NETNS) -machines $(LAB_MACHINES) -firmware $(LAB_FIRMWARE) -boot $(LAB_BOOT) -driver $(if $(filter vmedia,$(LAB_BOOT)),redfish,$(LAB_DRIVER)) $(if $(LAB_CONDUCTOR),-conductor $(LAB_CONDUCTOR))

lab-down:
	./$(BIN)/ferric-lab down -dir $(LAB_DIR) -netns $(LAB_NETNS)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

# PXE side by side (root): ferric's DHCP and TFTP against kea, dnsmasq and
# tftpd-hpa in one run; see test/bench/pxe-bench.sh for ROUNDS, PERIOD, ...
bench-pxe:
	./test/bench/pxe-deps.sh
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/pxe-bench ./pxe/cmd/pxe-bench
	$(GO) build -o $(BIN)/tftp-load ./pxe/cmd/tftp-load
	BIN_DIR=$(abspath $(BIN)) ./test/bench/pxe-bench.sh

# bench-scale: one conductor at 100,000 nodes (creates, detailed listing
# walks, RSS) and agent heartbeats; see test/bench/scale.sh for the knobs.
bench-scale: build
	$(GO) build -o $(BIN)/ ./test/bench ./test/bench/heartbeat
	BIN=$(BIN) test/bench/scale.sh

# bench-heartbeat: agent heartbeats on one conductor, agents in fast-track
# idle, cleaning and deploying; GOLDEN=<dir of Ironic's start-ironic.sh>
# runs the real Ironic beside it and prints the ratio. See
# test/bench/heartbeat.sh for the knobs.
bench-heartbeat: build
	$(GO) build -o $(BIN)/ ./test/bench/heartbeat
	BIN=$(BIN) test/bench/heartbeat.sh

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
