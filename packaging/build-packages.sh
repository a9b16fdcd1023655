#!/bin/sh
# make packages: .deb and .rpm of camd for amd64, arm64 and armhf into dist/.
#
# Cross-builds camd with CGO_ENABLED=0 per architecture, then packs each with
# nfpm v2.45.2 (through go run; later nfpm versions need modules the proxy
# does not serve) from the top-level nfpm.yaml.
#
# Environment:
#   PKG_VERSION  package version (default: from git: X.Y.Z for tag vX.Y.Z,
#                X.Y.Z+N.gSHA after it, 0.0.0~gitDATE.SHA before any tag)
#   PKG_ARCHS    architectures to build (default "amd64 arm64 armhf")
#   PKG_FORMATS  packagers to run (default "deb rpm")
#   GO           the go command (default go)
set -eu

cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM="github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"
ARCHS=${PKG_ARCHS:-amd64 arm64 armhf}
FORMATS=${PKG_FORMATS:-deb rpm}

version() {
	if [ -n "${PKG_VERSION:-}" ]; then
		echo "$PKG_VERSION"
		return
	fi
	if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
		d=${d#v}
		case "$d" in
		*-*-g*) echo "$d" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/' ;;
		*) echo "$d" ;;
		esac
		return
	fi
	sha=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
	date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
	echo "0.0.0~git$date.$sha"
}

VERSION=$(version)
case "$VERSION" in
[0-9]*) ;;
*) echo "build-packages: version \"$VERSION\" must start with a digit" >&2; exit 1 ;;
esac
mkdir -p dist
# Only this build's packages in dist/ afterwards.
rm -f dist/camd_*.deb dist/camd-*.rpm

# The default config (packaging/camd.yaml) is a conffile.
CAMD_YAML=packaging/camd.yaml
if [ ! -f "$CAMD_YAML" ]; then
	echo "build-packages: warning: $CAMD_YAML is missing; shipping an empty config (all defaults)" >&2
	CAMD_YAML=dist/camd.yaml
	printf '# camd configuration. Every setting is at its default; see "camd run --help".\n' >"$CAMD_YAML"
fi

# The Debian changelog (nfpm's chglog format), one entry for this version.
commit_date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
cat >dist/changelog.yaml <<CHG
- deb:
    urgency: medium
    distributions:
      - stable
  semver: "$VERSION-1"
  date: "$commit_date"
  packager: "camd maintainers <maintainers@camd.invalid>"
  changes:
    - note: "camd $VERSION, built from git $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)."
CHG

for arch in $ARCHS; do
	case "$arch" in
	amd64) goarch=amd64 nfpmarch=amd64 ;;
	arm64) goarch=arm64 nfpmarch=arm64 ;;
	armhf | arm | arm7) goarch=arm nfpmarch=arm7 ;;
	*) echo "build-packages: unknown architecture $arch" >&2; exit 1 ;;
	esac
	bin=dist/camd-linux-$goarch
	echo "build camd $VERSION linux/$goarch -> $bin"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=7 \
		"$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/camd
	for fmt in $FORMATS; do
		ARCH=$nfpmarch VERSION=$VERSION BINARY=$bin CAMD_YAML=$CAMD_YAML \
			"$GO" run "$NFPM" package --config nfpm.yaml --packager "$fmt" --target dist/
	done
done
ls -l dist/*.deb dist/*.rpm 2>/dev/null || true
