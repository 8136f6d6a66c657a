"""Read Prometheus' text format back: sample values by name and labels, summed over process groups."""
from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset]


def parse(text: str, by_group: bool = False) -> dict[Key, float]:
    """{(sample name, frozenset of label pairs): value}; `process_group` summed away unless `by_group`."""
    values: dict[Key, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if by_group or k != "process_group"}
            values[(sample.name, frozenset(labels.items()))] += sample.value
    return dict(values)


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    """One sample's value (0 when it is not there: a counter that never moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def groups(samples: dict[Key, float], name: str, **labels: str) -> dict[str, float]:
    """{process_group: value} of one sample, from a `parse(..., by_group=True)`."""
    found = {}
    for (sample, pairs), number in samples.items():
        found_labels = dict(pairs)
        group = found_labels.pop("process_group", "")
        if sample == name and found_labels == labels:
            found[group] = number
    return found


def scrape(client, **environ: str) -> str:
    response = client.get("/metrics", environ_overrides=environ or None)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4"), response.content_type
    return response.get_data(as_text=True)
