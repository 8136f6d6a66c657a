#!/bin/sh
# The buffering reverse proxy (deploy/nginx.conf.template) in the foreground: the Procfile's
# `proxy` process. Listens on PORT (default 8080) and forwards to gunicorn on WEB_PORT.
set -eu
NGINX_PORT="${NGINX_PORT:-${PORT:-8080}}"
WEB_UPSTREAM="${WEB_UPSTREAM:-127.0.0.1:${WEB_PORT:-8000}}"
NGINX_RUN_DIR="${NGINX_RUN_DIR:-${TMPDIR:-/tmp}/newsletter-nginx}"
export NGINX_PORT WEB_UPSTREAM NGINX_RUN_DIR
mkdir -p "$NGINX_RUN_DIR"
envsubst '$NGINX_PORT $WEB_UPSTREAM $NGINX_RUN_DIR' < "$(dirname "$0")/nginx.conf.template" > "$NGINX_RUN_DIR/nginx.conf"
exec "${NGINX:-nginx}" -c "$NGINX_RUN_DIR/nginx.conf" -p "$NGINX_RUN_DIR" -g 'daemon off;'
