#!/bin/sh
# Builds every image the compose file (deploy/containers/compose.yaml) and the Kubernetes
# manifests (deploy/k8s) use, all FROM the Debian base of build-base.sh, from the repository root:
#   localhost/newsletter           the app (Dockerfile): web, workers, beat, flower, migrate
#   localhost/newsletter-proxy     nginx, buffering (deploy/nginx.conf.template)
#   localhost/newsletter-postgres  PostgreSQL 15 (Debian's)
#   localhost/newsletter-redis     Redis 7 (Debian's)
# TAG (default latest) tags them all. Layers are cached: a rebuild after a code change only
# redoes the app's last steps.
#
# Package downloads during the build use the host's CA bundle (BUILD_CA_BUNDLE, default
# /etc/ssl/certs/ca-certificates.crt; empty: the image's own), mounted for the build only, so a
# TLS-inspecting proxy the host trusts works and nothing of it ends up in an image.
set -eu
cd "$(dirname "$0")/../.."
TAG="${TAG:-latest}"
here=deploy/containers
"$here/build-base.sh"

set --
ca="${BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$ca" ] && [ -f "$ca" ]; then
    set -- --volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro" \
        --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --build-arg NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

podman build "$@" -f "$here/Dockerfile" -t "localhost/newsletter:$TAG" .
for part in proxy postgres redis; do
    podman build -f "$here/$part.Containerfile" -t "localhost/newsletter-$part:$TAG" .
done
podman image ls --filter reference='localhost/newsletter*'
