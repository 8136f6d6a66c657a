#!/bin/sh
# Builds localhost/newsletter-debian-base: a minimal Debian (bookworm) root file system made with
# mmdebstrap from Debian's own mirror, imported into podman. Every image in deploy/containers
# starts FROM it, so nothing is pulled from a public image registry (none is reachable from the
# build machines; Debian's mirror is). Needs: mmdebstrap, podman (root, or mmdebstrap's unshare
# mode for a user).
#
#   deploy/containers/build-base.sh            # builds it unless the image already exists
#   FORCE=1 deploy/containers/build-base.sh    # rebuilds it (e.g. for Debian security updates)
#
# MIRROR and SECURITY_MIRROR default to the mirror apt uses on this host; SUITE to bookworm
# (its python3 is 3.11, which pyproject.toml requires at least).
set -eu
IMAGE="${BASE_IMAGE:-localhost/newsletter-debian-base:latest}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

if [ -z "${FORCE:-}" ] && podman image exists "$IMAGE"; then
    echo "build-base: $IMAGE exists (FORCE=1 rebuilds it)"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# minbase: dpkg, apt and the essential set. python3 runs the app; ca-certificates for TLS to an
# SMTP relay or Sentry; tzdata so zoneinfo knows the subscribers' time zones. Documentation,
# man pages and locales are left out to keep every image built on it small.
mmdebstrap --variant=minbase \
    --include=python3,ca-certificates,tzdata \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$SUITE" "$work/rootfs.tar" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main"

podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$IMAGE"
podman image ls "$IMAGE"
