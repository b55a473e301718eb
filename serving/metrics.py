"""Prometheus metrics of the scoring API (`GET /metrics`)."""

from __future__ import annotations

from functools import cache

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide; it also
    carries the process, platform and garbage-collector metrics the default registry has."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        r.register(PLATFORM_COLLECTOR)
        r.register(GC_COLLECTOR)
        self.requests = Counter(
            "flywheel_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "flywheel_request_seconds",
            "Time to answer a scoring request, by route and status (refusals included).",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "flywheel_decisions",
            "Decisions given, by policy, model version and decision.",
            ["policy", "model_version", "decision"],
            registry=r,
        )
        self.fallbacks = Counter(
            "flywheel_fallbacks", "Predictions answered on fallback.", ["policy"], registry=r
        )
        self.reloads = Counter(
            "flywheel_reloads",
            "Model refreshes by policy and outcome (changed, unchanged, failed).",
            ["policy", "outcome"],
            registry=r,
        )
        self.serving_version = Gauge(
            "flywheel_model_version",
            "Version serving as champion (0: fallback).",
            ["policy"],
            registry=r,
        )
        self.model_info = Gauge(
            "flywheel_model_info",
            "1 for each model version serving, labelled by policy, alias and version.",
            ["policy", "alias", "version"],
            registry=r,
        )
        self.compiled = Gauge(
            "flywheel_model_compiled",
            "1 when the model scores on the compiled path, 0 on the reference path "
            "(predict_proba: its shape is unknown, or the load check found a difference).",
            ["policy", "alias"],
            registry=r,
        )
        self.batch_items = Histogram(
            "flywheel_batch_items",
            "Items scored together in one model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.log_write = Histogram(
            "flywheel_prediction_log_write_seconds",
            "Time to append a batch to the prediction log.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_lag = Gauge(
            "flywheel_prediction_log_lag_seconds",
            "Age of the oldest logged prediction not yet handed to compaction.",
            registry=r,
        )
        self.log_unfiled = Gauge(
            "flywheel_prediction_log_unfiled_segments",
            "Rolled prediction-log segments compaction had to keep (a policy it could not load).",
            registry=r,
        )
        self.log_roll_failures = Counter(
            "flywheel_prediction_log_roll_failures",
            "Prediction-log rolls that failed (retried at the next batch; no request failed).",
            registry=r,
        )
        self.shadow_skipped = Counter(
            "flywheel_shadow_skipped",
            "Rows not shadow-scored because the shadow backlog was full.",
            ["policy"],
            registry=r,
        )
        self.shadow_failures = Counter(
            "flywheel_shadow_failures",
            "Shadow scorings that failed (the answer was unaffected).",
            ["policy"],
            registry=r,
        )

    # Looking a labelled child up costs microseconds per request; the hot path keeps them.
    @cache  # noqa: B019 - one Metrics per app, alive as long as the app
    def answered(self, route: str, status: str) -> Counter:
        return self.requests.labels(route, status)

    @cache  # noqa: B019
    def timed(self, route: str, status: str) -> Histogram:
        return self.latency.labels(route, status)

    @cache  # noqa: B019
    def decided(self, policy: str, version: int, decision: str) -> Counter:
        return self.decisions.labels(policy, str(version), decision)
