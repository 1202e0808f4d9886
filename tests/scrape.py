"""Reading what GET /metrics returns: Prometheus's text format, parsed by prometheus-client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape has no such sample (nothing counted yet)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)
