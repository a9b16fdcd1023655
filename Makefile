# camd build, test and release targets. Everything builds with CGO_ENABLED=0.
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
GOBIN       := $(shell $(GO) env GOPATH)/bin
PREFIX      ?= /usr/local
export CGO_ENABLED = 0

CROSS := linux/amd64 linux/arm64 linux/arm darwin/arm64 darwin/amd64 windows/amd64

.PHONY: build install test test-deps lint vet cross demo bench soak fuzz packages pkg e2e-systemd clean image man

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o camd ./cmd/camd

# The binary to $(DESTDIR)$(PREFIX)/bin (default /usr/local/bin).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 camd $(DESTDIR)$(PREFIX)/bin/camd

# The race detector needs cgo, so test is the one target that turns it on.
# testsummary prints what go test prints, then the skipped tests grouped by
# the program they lack; it exits with go test's status.
test: vet
	CGO_ENABLED=1 GO=$(GO) $(GO) run ./internal/tools/testsummary -race -count=1 -timeout 30m ./...

# The programs the tests talk to, on Debian or Ubuntu (as root); CI
# (.ci/run) installs them the same way. Without them those tests skip.
# ffmpeg/ffprobe: real RTSP readers and H.264 source.
# prometheus: promtool checks /metrics. chromium: the status-page browser test.
# iproute2, nftables: network-fault tests in namespaces.
# systemd-container, debootstrap, systemd, lintian: packages under a real systemd.
# The GStreamer RTSP server (through Debian's python3-gi): a camera camd's
# authors did not write, with x264/x265 video and Opus, G.711, AAC audio.
# podman, umoci: the container image test.
TEST_DEPS := ffmpeg prometheus chromium iproute2 nftables \
	systemd-container debootstrap systemd lintian ca-certificates \
	python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
	gstreamer1.0-libav rtsp-server-perl mosquitto podman umoci
test-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_DEPS) >/dev/null

# The test hooks (internal/daemon/testhooks_on.go) build only with their
# tag, so they are vetted with it as well.
vet:
	$(GO) vet ./...
	$(GO) vet -tags camdtesthooks ./internal/daemon ./cmd/camd

lint: vet
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

cross:
	@set -e; for t in $(CROSS); do \
		os=$${t%/*}; arch=$${t#*/}; out=dist/camd-$$os-$$arch; \
		[ $$os = windows ] && out=$$out.exe; \
		echo "build $$t -> $$out"; \
		GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/camd; \
	done

# A man page per command (camd.1, camd-camera-add.1, …) into MANDIR.
MANDIR ?= dist/man
man: build
	./camd gen-man $(MANDIR)

# The container image: an OCI image layout in dist/image (and the same as an
# oci-archive, dist/camd-image.tar) for IMAGE_PLATFORMS, built by
# packaging/cmd/mkimage without a container daemon. Its dates are the last
# commit's, so that the same commit gives the same image.
IMAGE_PLATFORMS := linux/amd64 linux/arm64 linux/arm/v7
image:
	@set -e; bins=; for p in $(IMAGE_PLATFORMS); do \
		arch=$$(echo $$p | cut -d/ -f2); v=$$(echo $$p | cut -d/ -f3); out=dist/image-bin/camd-$$(echo $$p | tr / -); \
		echo "build $$p -> $$out"; \
		GOOS=linux GOARCH=$$arch GOARM=$${v#v} $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/camd; \
		bins="$$bins -bin $$p=$$out"; \
	done; \
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null)} \
	$(GO) run ./packaging/cmd/mkimage -out dist/image -archive dist/camd-image.tar \
		-version $(VERSION) -revision "$$(git rev-parse HEAD 2>/dev/null)" $$bins

# A simulator with 4 cameras and a daemon in one process, with a live table.
demo: build
	./camd demo

# Measures camd against ffmpeg-per-camera, camd with read_batch 0s and the
# floor at N = 16, 64, 256 and writes bench/RESULTS.md (about 17 minutes;
# BENCHFLAGS=-quick for a short run, BENCHFLAGS='-ab REV' adds A/B pairs
# against camd built at REV; GO2RTC=/path MEDIAMTX=/path add go2rtc and
# mediamtx as RTSP proxies at N = 64: see bench/README.md).
bench: build
	$(GO) run ./bench/cmd/camdbench -camd ./camd -out bench/RESULTS.md $(BENCHFLAGS)

# Every fuzz target for FUZZTIME each (the seed corpora also run in make test).
# Go 1.26's fuzz coordinator can fail a run that found nothing with a bare
# "context deadline exceeded" at the end of FUZZTIME (golang/go#75804, fixed
# in Go 1.27): that alone, with no failing input written, is not a failure.
FUZZTIME ?= 30s
FUZZ := ./internal/daemon:FuzzParseConfig ./internal/api:FuzzCameraRequest ./device:FuzzSpecValidate ./stream:FuzzIngest ./stream/internal/rtsp:FuzzReader ./stream:FuzzH264Depacketizer ./stream:FuzzH265Depacketizer ./stream/relay:FuzzPacketizer
fuzz:
	@set -e; out=$$(mktemp); trap 'rm -f $$out' EXIT; for f in $(FUZZ); do \
		echo "fuzz $${f#*:} in $${f%%:*} for $(FUZZTIME)"; \
		if $(GO) test -run '^$$' -fuzz "^$${f#*:}$$" -fuzztime $(FUZZTIME) $${f%%:*} >$$out 2>&1; then \
			cat $$out; \
		else \
			cat $$out; \
			if grep -q 'Failing input written' $$out || [ "$$(grep -c -- '^--- FAIL' $$out)" != 1 ] || \
				[ "$$(grep -A1 -- '^--- FAIL' $$out | tail -n1 | tr -d ' \t')" != contextdeadlineexceeded ]; then exit 1; fi; \
			echo "fuzz $${f#*:}: the fuzz coordinator's end-of-time race (golang/go#75804), no failing input: not a failure"; \
		fi; \
	done

# 64 simulated cameras under random faults for SOAK (default 2m).
SOAK ?= 2m
soak:
	CAMD_SOAK=$(SOAK) $(GO) test -count=1 -v -timeout 0 -run TestSoak ./test/soak/

# .deb and .rpm for amd64, arm64 and armhf into dist/ (nfpm through go run).
packages:
	./packaging/build-packages.sh

# The macOS installer package; needs macOS (pkgbuild, productbuild).
pkg:
	./packaging/build-pkg.sh

# Installs the .deb into a real systemd booted in a container and checks it.
e2e-systemd: packages
	./packaging/e2e-systemd.sh

clean:
	rm -rf camd dist bench/out
