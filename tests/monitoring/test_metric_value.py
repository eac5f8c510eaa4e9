"""motcua.ops.metric_value: the roles' reading of a /metrics page after a reload."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.motcua.ops.plugins.filter.metric_value import metric_value
from prometheus_client import CollectorRegistry, Gauge, generate_latest


def page() -> str:
    registry = CollectorRegistry()
    Gauge("prometheus_config_last_reload_successful", "Whether the last reload succeeded.", registry=registry).set(1)
    Gauge("prometheus_config_last_reload_success_timestamp_seconds", "Last success.", registry=registry).set(1.7649e9)
    labelled = Gauge("prometheus_config_last_reload", "A labelled look-alike.", ["x"], registry=registry)
    labelled.labels("a").set(5)
    return generate_latest(registry).decode()


def test_reads_the_unlabelled_sample_of_the_named_metric():
    text = page()
    assert metric_value(text, "prometheus_config_last_reload_successful") == 1.0
    assert metric_value(text, "prometheus_config_last_reload_success_timestamp_seconds") == 1.7649e9
    # Neither a prefix of another name nor a labelled sample counts.
    assert metric_value(text, "prometheus_config_last_reload") is None
    assert metric_value(text, "prometheus_config_last_reload_success") is None


def test_timestamps_empty_braces_and_special_values():
    assert metric_value("up{} 0 1764900000000\n", "up") == 0.0
    assert metric_value("# HELP up x\nup NaN\n", "up") != metric_value("up NaN\n", "up")  # NaN is itself
    assert metric_value("up +Inf\n", "up") == float("inf")


def test_no_page_is_no_value_and_a_bad_name_is_an_error():
    assert metric_value(None, "up") is None
    assert metric_value("", "up") is None
    with pytest.raises(AnsibleFilterError, match="not a metric name"):
        metric_value("up 1\n", "up{job}")
    with pytest.raises(AnsibleFilterError, match="has the value"):
        metric_value("up one\n", "up")
