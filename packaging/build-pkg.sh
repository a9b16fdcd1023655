#!/bin/sh
# make pkg: the macOS installer package dist/camd-VERSION.pkg (a flat package
# built with pkgbuild and productbuild). Needs macOS.
#
# It installs:
#   /usr/local/bin/camd                          universal (arm64 + amd64) binary
#   /Library/LaunchDaemons/com.camd.camd.plist   packaging/com.camd.camd.plist
#   /usr/local/etc/camd/camd.yaml                the default config, only if absent
# Its preinstall creates the _camd user and group camd runs as and its dirs
# (scripts/macos-user.sh); its postinstall makes the config root:_camd
# 0640 and loads the daemon (launchctl bootstrap system), which starts it
# (RunAtLoad) and keeps it running (KeepAlive). Logs:
# /Library/Logs/camd/camd.log.
#
# Environment: PKG_VERSION (default from git), GO (default go),
# PKG_IDENTIFIER (default com.camd.camd), PKG_SIGN (productbuild --sign
# identity, optional).
set -eu

if [ "$(uname -s)" != Darwin ] || ! command -v pkgbuild >/dev/null 2>&1 || ! command -v productbuild >/dev/null 2>&1; then
	echo "make pkg needs macOS (pkgbuild/productbuild); this is $(uname -s). Use \"make packages\" for .deb/.rpm." >&2
	exit 1
fi

cd "$(dirname "$0")/.."
GO=${GO:-go}
ID=${PKG_IDENTIFIER:-com.camd.camd}
if [ -n "${PKG_VERSION:-}" ]; then
	VERSION=$PKG_VERSION
elif d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	VERSION=$(echo "${d#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/')
else
	VERSION=0.0.0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
scripts=$work/scripts
mkdir -p "$root/usr/local/bin" "$root/Library/LaunchDaemons" "$root/usr/local/share/camd" "$scripts" dist

for arch in arm64 amd64; do
	CGO_ENABLED=0 GOOS=darwin GOARCH=$arch "$GO" build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" -o "$work/camd-$arch" ./cmd/camd
done
lipo -create -output "$root/usr/local/bin/camd" "$work/camd-arm64" "$work/camd-amd64"
chmod 0755 "$root/usr/local/bin/camd"
install -m 0644 packaging/com.camd.camd.plist "$root/Library/LaunchDaemons/com.camd.camd.plist"
plutil -lint "$root/Library/LaunchDaemons/com.camd.camd.plist"
if [ -f packaging/camd.yaml ]; then
	install -m 0644 packaging/camd.yaml "$root/usr/local/share/camd/camd.yaml.default"
else
	printf '# camd configuration. Every setting is at its default; see "camd run --help".\n' >"$root/usr/local/share/camd/camd.yaml.default"
fi
install -m 0755 packaging/scripts/macos-preinstall.sh "$scripts/preinstall"
install -m 0755 packaging/scripts/macos-postinstall.sh "$scripts/postinstall"
install -m 0755 packaging/scripts/macos-user.sh "$scripts/macos-user.sh"

pkgbuild --root "$root" --scripts "$scripts" --identifier "$ID" --version "$VERSION" \
	--install-location / --ownership recommended "$work/camd-component.pkg"
if [ -n "${PKG_SIGN:-}" ]; then
	productbuild --sign "$PKG_SIGN" --identifier "$ID" --version "$VERSION" --package "$work/camd-component.pkg" "dist/camd-$VERSION.pkg"
else
	productbuild --identifier "$ID" --version "$VERSION" --package "$work/camd-component.pkg" "dist/camd-$VERSION.pkg"
fi
echo "built dist/camd-$VERSION.pkg"
