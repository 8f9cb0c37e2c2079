"""Reading `/metrics` in tests: the Prometheus text as {(sample name, labels): value}."""

from __future__ import annotations

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


def scrape(app: Flask) -> str:
    """The app's `/metrics`, as Prometheus text."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def samples(exposition: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(exposition: str, name: str, **labels: str) -> float:
    """One sample's value (0 when the exposition has no such sample)."""
    return samples(exposition).get((name, frozenset(labels.items())), 0.0)


def summed(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`, whatever their others (the FHIR
    query latency of a resource type, under every outcome)."""
    wanted = set(labels.items())
    return sum(v for (sample, held), v in samples(exposition).items() if sample == name and wanted <= held)


def total(exposition: str, name: str) -> float:
    """The sum of the samples called `name`, whatever their labels."""
    return sum(v for (sample, _), v in samples(exposition).items() if sample == name)


def labelled(exposition: str, name: str) -> list[dict[str, str]]:
    """The label sets of the samples called `name`."""
    return [dict(labels) for sample, labels in samples(exposition) if sample == name]
