"""Prometheus metrics (docs/operations.md): `instruments` defines them all and is what call sites
use; `multiproc` keeps each process group's values in a per-host folder; `exposition` reads them
back, with the gauges read at scrape time, for GET /metrics and a worker's own exporter."""
