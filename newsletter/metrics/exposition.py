"""The text exposition: every process group's values on this host, plus the scrape-time gauges.

`render` is what GET /metrics answers; `serve` is a Celery worker's own small HTTP exporter
(METRICS_PORT) for a worker host without a web process, which has no scrape-time gauges:
those come from the web's /metrics.
"""
from __future__ import annotations

import fcntl
import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from . import multiproc

log = logging.getLogger(__name__)

# (name, help, label names) of a gauge and its values by label values (instruments.LEDGER_ROWS, ...).
Reading = tuple[tuple[str, str, tuple[str, ...]], dict[tuple[str, ...], float]]


class GroupCollector(Collector):
    """Every process group under the host's root, each sample labelled with its `process_group`."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for folder in sorted(self.base.glob("*/")):
            for metric in self._group(folder):
                into = merged.setdefault(metric.name, Metric(metric.name, metric.documentation, metric.type))
                into.samples += [sample._replace(labels={**sample.labels, "process_group": folder.name})
                                 for sample in metric.samples]
        yield from merged.values()

    @staticmethod
    def _group(folder: Path) -> Iterable[Metric]:
        for _ in range(3):  # a file can vanish between the listing and the read (its group restarting)
            try:
                with multiproc.locked(folder, fcntl.LOCK_SH):  # never halfway through a `compact`
                    files = glob.glob(os.path.join(folder, "*.db"))
                    try:
                        return list(MultiProcessCollector.merge(files, accumulate=True))
                    except FileNotFoundError:
                        raise
                    except Exception:  # noqa: BLE001  (one unreadable file must not cost the whole page)
                        return list(MultiProcessCollector.merge(_readable(files), accumulate=True))
            except FileNotFoundError:
                continue
        return []


def _readable(files: list[str]) -> list[str]:
    good = []
    for name in files:
        try:
            list(MmapedDict.read_all_values_from_file(name))
        except Exception:  # noqa: BLE001
            log.warning("newsletter: skipping the unreadable metrics file %s", name)
            continue
        good.append(name)
    return good


class StateCollector(Collector):
    """Gauges read at scrape time; `read` returns them (services.monitoring.readings)."""

    def __init__(self, read: Callable[[], list[Reading]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for (name, documentation, labels), values in self.read():
            family = GaugeMetricFamily(name, documentation, labels=list(labels))
            for label_values, value in sorted(values.items()):
                family.add_metric(list(label_values), value)
            yield family


def registry(read: Callable[[], list[Reading]] | None = None) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(GroupCollector(multiproc.root()))
    if read is not None:
        found.register(StateCollector(read))
    return found


def render(read: Callable[[], list[Reading]] | None = None) -> tuple[bytes, str]:
    """The text format (0.0.4: what every Prometheus version reads): (body, content type)."""
    return generate_latest(registry(read)), CONTENT_TYPE_PLAIN_0_0_4


def serve(port: int, addr: str) -> None:
    """A worker host's exporter: this host's process groups on http://addr:port/metrics (a thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr, registry=registry())
