#!/bin/sh
# The app image's entrypoint: the first argument names the process type, as in the Procfile
# (web, worker, worker-transactional, beat, flower) plus `migrate` (the release step), `wait-migrated`
# and `probe` (the health check); anything else runs as given (`flask create-admin ...`, `sh`).
# Settings come from the environment (.env.example, docs/settings.md).
set -eu
cd /app

# Waits until the database, broker and Redis answer (`flask check`), for at most WAIT_SECONDS:
# a process started next to its servers (compose, a Kubernetes rollout) does not crash-loop.
wait_for_services() {
    deadline=$(( $(date +%s) + ${WAIT_SECONDS:-60} ))
    until flask check >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            exec flask check  # prints what is down, exits 1
        fi
        sleep 1
    done
}

# Waits until the migration step has brought the schema to the newest revision, so new code never
# meets an old schema: an init container's job in deploy/k8s, and done first by every process when
# WAIT_FOR_MIGRATION=1 (compose.yaml, where the `migrate` service runs beside them).
wait_migrated() {
    deadline=$(( $(date +%s) + ${WAIT_SECONDS:-600} ))
    until flask db current 2>/dev/null | grep -q '(head)'; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "newsletter: the database schema is not at the newest revision (run the migration)" >&2
            exit 1
        fi
        sleep 3
    done
}

process="${1:-web}"
case "$process" in
    web|worker|worker-transactional|beat)
        if [ "${WAIT_FOR_MIGRATION:-0}" = 1 ]; then wait_migrated; fi ;;
esac
case "$process" in
    web)
        exec env TRUSTED_PROXIES="${TRUSTED_PROXIES:-1}" gunicorn wsgi:app \
            --bind "${WEB_BIND:-0.0.0.0:8000}" --workers "${WEB_CONCURRENCY:-2}" --threads 4 \
            --access-logfile - ;;
    worker)
        exec celery -A celery_worker worker --queues bulk,default \
            --concurrency "${WORKER_CONCURRENCY:-4}" -O fair --prefetch-multiplier 1 \
            --loglevel INFO --hostname "bulk@%h" ;;
    worker-transactional)
        exec celery -A celery_worker worker --queues transactional \
            --concurrency "${TRANSACTIONAL_CONCURRENCY:-2}" --loglevel INFO --hostname "tx@%h" ;;
    beat)
        exec celery -A celery_worker --quiet beat --loglevel INFO \
            --schedule "${INSTANCE_PATH:-/tmp}/celerybeat-schedule" ;;
    flower)
        exec celery -A celery_worker flower --address="${FLOWER_ADDRESS:-0.0.0.0}" \
            --port="${FLOWER_PORT:-5555}" ;;
    migrate)
        wait_for_services
        exec flask db upgrade ;;
    wait-migrated)
        wait_migrated ;;
    probe)
        # Health checks (compose, Kubernetes exec probes): `probe URL` passes on an HTTP answer
        # below 500 (Flower's 401 means alive), `probe worker NAME` when the Celery worker
        # NAME@<hostname> answers a ping.
        if [ "${2:-}" = worker ]; then
            exec celery -A celery_worker inspect ping --timeout 5 --destination "${3:-bulk}@$(hostname)" >/dev/null
        fi
        exec python -c '
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
except urllib.error.HTTPError as error:
    sys.exit(error.code >= 500)
' "${2:?probe URL}" ;;
    *)
        exec "$@" ;;
esac
