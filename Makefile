# ferric — build, run and test. See README.md.
GO        ?= go
BIN       := bin
GOFLAGS   ?=
CGO_ENABLED ?= 0
export CGO_ENABLED

.PHONY: all build run test deps vet fmt ramdisk lab lab-down bench clean

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
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
