"""Prometheus instruments of the server, on one registry served at ``/metrics``.

Names follow Prometheus conventions (base units, ``_total`` counters) and split
queue time from compute time, as Triton does (``nv_inference_queue_duration_us``
vs ``nv_inference_compute_infer_duration_us``). The instruments live on
:data:`REGISTRY`, not on the client's global default registry, so that several
apps in one process (tests) and other libraries do not collide.

Creating the instruments does no I/O; they only count in memory.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry ``/metrics`` exposes."""

# Seconds from an alert's commit to its delivery to a handheld (observed by the
# alert service when it sends an event). Defined first: the alerts module imports it.
ALERT_DELIVERY_LAG = Histogram(
    "cv_alert_delivery_lag_seconds",
    "Seconds from an alert's commit to its delivery to a handheld.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "cv_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "cv_http_request_duration_seconds",
    "Seconds from a request's arrival to its response, by route template.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPLOAD_BYTES = Histogram(
    "cv_upload_bytes",
    "Size of accepted scan images in bytes.",
    buckets=(2**14, 2**16, 2**18, 2**20, 2**22, 2**24, 2**26),
    registry=REGISTRY,
)
QUEUE_DURATION = Histogram(
    "cv_inference_queue_duration_seconds",
    "Seconds a request waited in the batcher's queue before its batch ran.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
COMPUTE_DURATION = Histogram(
    "cv_inference_compute_duration_seconds",
    "Seconds one batch took in the detector (pre-processing, network, post-processing).",
    ["model"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "cv_inference_batch_size",
    "Images per batch the batcher ran.",
    ["model"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "cv_inference_queue_depth",
    "Requests waiting in the batcher's queue.",
    ["model"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "cv_inference_rejected_total",
    "Inference requests not run: queue full (429) or deadline passed (504).",
    ["model", "reason"],
    registry=REGISTRY,
)
INFERENCE_FAILURES = Counter(
    "cv_inference_failures_total",
    "Batches whose inference raised an error.",
    ["model"],
    registry=REGISTRY,
)
SCANS = Counter(
    "cv_scans_total",
    "Scans by the status they reached: stored, done, failed.",
    ["status"],
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "cv_model_loaded",
    "1 for the model version that serves requests, 0 for versions swapped out.",
    ["model", "name", "version"],
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
