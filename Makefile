# snwgw build and test entry points. `make test` is what CI runs.

GO       ?= go
FUZZTIME ?= 10s
BENCHTIME ?= 1s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
# The Raspberry Pi family: armv6 (Pi Zero/1), armv7 (Pi 2/3 on 32-bit OS), arm64.
DIST_TARGETS := linux/amd64 linux/arm64 linux/arm/6 linux/arm/7

.PHONY: all build test fmt-check vet fuzz bench static dist deb clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/snwgw ./cmd/snwgw

test: fmt-check vet
	$(GO) test -race -count=1 ./...
	@# Memory budgets are measured without the race detector, which inflates them.
	$(GO) test -count=1 -run 'TestMemoryPer' ./...

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*' -not -path './dist/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Runs every fuzz target of every package for FUZZTIME each.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# The one static build (no cgo) that every release build shares:
# GOOS, GOARCH and GOARM come from the environment, the binary goes to OUT.
OUT ?= bin/snwgw-static
static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT) ./cmd/snwgw

# Static binaries for the machines the gateway lives on.
dist:
	@mkdir -p dist
	@set -e; for t in $(DIST_TARGETS); do \
		os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=""; name=snwgw-$$os-$$arch; \
		if [ "$$arch" = arm ]; then arm=$${rest#*/}; name=$$name"v"$$arm; fi; \
		echo "dist/$$name"; \
		GOOS=$$os GOARCH=$$arch GOARM=$$arm $(MAKE) --no-print-directory -s static \
			GO='$(GO)' VERSION='$(VERSION)' REVISION='$(REVISION)' OUT=dist/$$name; \
	done

# Debian packages in dist/: amd64, arm64, and armhf built for ARMv6 so that
# one package serves every Raspberry Pi (see scripts/deb.sh).
DEB_ARCHS ?= amd64 arm64 armhf
deb:
	GO='$(GO)' MAKE='$(MAKE)' VERSION='$(VERSION)' REVISION='$(REVISION)' ./scripts/deb.sh $(DEB_ARCHS)

clean:
	rm -rf bin dist
