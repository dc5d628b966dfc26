#!/usr/bin/env bash
# Builds the Debian packages of snwgw with dpkg-deb alone (no debhelper, no
# downloads): one static binary, the systemd unit, the configuration as a
# conffile and the licences of everything linked into the binary.
#
#   scripts/deb.sh [ARCH...]          dist/snwgw_VERSION_ARCH.deb for each ARCH
#                                     (default: amd64 arm64 armhf)
#   scripts/deb.sh debversion STRING  the Debian version for a git describe string
#   scripts/deb.sh copyright          the copyright file, on stdout
#
# Environment: VERSION (default: git describe, as the Makefile does),
# REVISION, GO, MAKE, DIST (output directory, default dist), DEB_MAINTAINER
# and SOURCE_DATE_EPOCH (default: the commit's time).
#
# Architectures: Debian's armhf is ARMv7, but Raspberry Pi OS's armhf is
# ARMv6 (Pi 1 and Zero) and calls itself armhf on every Pi. The armhf package
# is therefore built with GOARM=6: it installs and runs on every 32-bit Pi
# and on any Debian armhf machine, since ARMv7 runs ARMv6 code. A second,
# GOARM=7 armhf package could not have the same name, and armel is
# Debian's ARMv5 soft-float port, which no Pi system accepts.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
MAKE=${MAKE:-make}
DIST=${DIST:-dist}
DEB_MAINTAINER=${DEB_MAINTAINER:-The snwgw authors <maintainers@snwgw.invalid>}
HOMEPAGE=https://github.com/snwgw/snwgw

# debversion turns a git describe string into a Debian version that sorts
# the way the commits do: v1.2.0 -> 1.2.0, v1.2.0-rc1 -> 1.2.0~rc1 (before
# 1.2.0), v1.2.0-3-gabc1234 -> 1.2.0+3.gabc1234. Before the first tag
# describe gives only a commit, which becomes 0.0~gitTIME.HASH with the
# commit's time (second argument, YYYYMMDDhhmmss UTC), so later commits
# sort later. A dirty tree adds .dirty.
debversion() {
	local v=${1#v} date=${2:-0} dirty="" n="" hash=""
	if [[ $v == *-dirty ]]; then
		v=${v%-dirty}
		dirty=.dirty
	fi
	if [[ $v =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}
		n=${BASH_REMATCH[2]}
		hash=${BASH_REMATCH[3]}
	fi
	if [ -z "$n" ] && [[ $v =~ ^[0-9a-f]{7,40}$ ]]; then
		v=0.0~git$date.$v$dirty
	elif [[ $v =~ ^[0-9] ]]; then
		v=${v//-/\~}
		if [ -n "$n" ]; then
			v=$v+$n.g$hash$dirty
		elif [ -n "$dirty" ]; then
			v=$v+dirty
		fi
	else
		v=0.0~$v$dirty
	fi
	# Only these characters may appear in an upstream version without a
	# Debian revision.
	printf '%s\n' "${v//[^A-Za-z0-9.+~]/.}"
}

# copyright prints /usr/share/doc/snwgw/copyright: the project's licence,
# then, in full, the licence of Go and of every module linked into the
# binary, found in the module cache.
copyright() {
	cat <<EOF
snwgw: MQTT-SN gateway with a built-in MQTT broker
Source: $HOMEPAGE

EOF
	cat LICENSE
	cat <<EOF

/usr/bin/snwgw is a static binary. It contains Go's standard library and
runtime and the Go modules listed below, under their own licences, which
follow in full.

EOF
	local goversion modules
	goversion=$("$GO" env GOVERSION)
	modules=$(GOOS=linux CGO_ENABLED=0 "$GO" list -deps \
		-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/snwgw | sort -u)
	echo "  Go $goversion"
	while read -r path version _; do
		echo "  $path $version"
	done <<<"$modules"
	licences "Go $goversion" "$("$GO" env GOROOT)"
	while read -r path version dir; do
		if [ -z "$dir" ]; then
			echo "deb: module $path $version is not in the module cache (go mod download)" >&2
			return 1
		fi
		licences "$path $version" "$dir"
	done <<<"$modules"
}

# licences prints the licence files at the top of dir, under a heading.
licences() {
	local name=$1 dir=$2 f found=""
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		case "$(basename "$f" | tr '[:upper:]' '[:lower:]')" in
		licence* | license* | copying* | notice* | patents | edl-v* | epl-v*)
			printf '\n%s\n%s: %s\n\n' "------------------------------------------------------------------------" "$name" "$(basename "$f")"
			cat "$f"
			found=1
			;;
		esac
	done
	if [ -z "$found" ]; then
		echo "deb: no licence file in $dir ($name)" >&2
		return 1
	fi
}

# goarch prints the GOARCH and GOARM of a Debian architecture.
goarch() {
	case "$1" in
	amd64) echo "amd64 " ;;
	arm64) echo "arm64 " ;;
	armhf) echo "arm 6" ;; # every Raspberry Pi; see the header
	*)
		echo "deb: unsupported architecture $1 (amd64, arm64, armhf)" >&2
		return 1
		;;
	esac
}

# package builds $DIST/snwgw_$DEBVERSION_$1.deb.
package() {
	local arch=$1 goarch goarm root deb
	read -r goarch goarm <<<"$(goarch "$arch")"
	root=$tmp/$arch
	install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
		"$root/usr/lib/sysusers.d" "$root/etc/snwgw" "$root/usr/share/doc/snwgw"

	GOOS=linux GOARCH=$goarch GOARM=$goarm "$MAKE" --no-print-directory -s static \
		GO="$GO" VERSION="$VERSION" REVISION="$REVISION" OUT="$root/usr/bin/snwgw"
	chmod 0755 "$root/usr/bin/snwgw"
	install -m 0644 deploy/snwgw.service "$root/lib/systemd/system/snwgw.service"
	install -m 0644 deploy/snwgw.sysusers "$root/usr/lib/sysusers.d/snwgw.conf"
	install -m 0644 gateway.toml "$root/etc/snwgw/gateway.toml"
	install -m 0644 "$tmp/copyright" "$root/usr/share/doc/snwgw/copyright"
	for s in postinst prerm postrm; do
		install -m 0755 "deploy/debian/$s" "$root/DEBIAN/$s"
	done
	echo /etc/snwgw/gateway.toml >"$root/DEBIAN/conffiles"
	chmod 0644 "$root/DEBIAN/conffiles"

	# No Depends: the binary is static. The maintainer scripts use only
	# essential tools (useradd from passwd when systemd-sysusers is absent).
	cat >"$root/DEBIAN/control" <<EOF
Package: snwgw
Version: $DEBVERSION
Architecture: $arch
Maintainer: $DEB_MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Section: net
Priority: optional
Homepage: $HOMEPAGE
Description: MQTT-SN gateway with a built-in MQTT broker
 snwgw receives MQTT-SN 1.2 from wireless sensors over UDP, DTLS and serial
 lines (raw or XBee API framing), keeps their sessions (topic registration,
 sleeping clients, QoS -1 to 2, wills, retransmission) and carries their
 traffic onto a built-in MQTT 3.1.1/5.0 broker that ordinary MQTT clients
 use directly, over TCP, TLS or WebSocket. Bridges forward to upstream
 brokers.
 .
 The service is not enabled at installation: review
 /etc/snwgw/gateway.toml, then run systemctl enable --now snwgw.
EOF
	chmod 0644 "$root/DEBIAN/control"

	deb=$DIST/snwgw_${DEBVERSION}_$arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
	echo "$deb"
}

case "${1:-}" in
debversion)
	debversion "$2" "${3:-}"
	exit
	;;
copyright)
	copyright
	exit
	;;
esac

if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
fi
if [ -z "${REVISION+set}" ]; then
	REVISION=$(git rev-parse HEAD 2>/dev/null || true)
fi
commitdate=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
DEBVERSION=$(debversion "$VERSION" "$commitdate")
# dpkg-deb clamps file times to this: the same commit gives the same times.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
archs=("$@")
if [ ${#archs[@]} -eq 0 ]; then
	archs=(amd64 arm64 armhf)
fi
for arch in "${archs[@]}"; do
	goarch "$arch" >/dev/null
done

mkdir -p "$DIST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copyright >"$tmp/copyright"
for arch in "${archs[@]}"; do
	package "$arch"
done
