#!/bin/bash
# The proxy's health check: GET /healthz through nginx (so gunicorn answers too) with bash's
# /dev/tcp, as the image has no curl. NGINX_PORT is "port" or "address:port".
set -eu
port="${NGINX_PORT##*:}"
address=127.0.0.1
case "$NGINX_PORT" in *:*) address="${NGINX_PORT%:*}" ;; esac
[ "$address" = "0.0.0.0" ] && address=127.0.0.1
exec 3<>"/dev/tcp/$address/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 5 status <&3
case "$status" in *" 200 "*) exit 0 ;; *) echo "proxy: /healthz answered: $status" >&2; exit 1 ;; esac
