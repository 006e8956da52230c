"""Server settings, read from ``CV_SERVER_*`` environment variables or ``.env``.

Only the app factory and the CLI read these; services get explicit values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cv.models.load import RUNTIMES
from cv.models.runtime import OPENVINO_PRECISIONS


class ServerSettings(BaseSettings):
    """Everything the inference server can be told.

    Attributes:
        database_url: SQLAlchemy URL. SQLite (embedded, the default) or PostgreSQL
            (``postgresql+psycopg://user:pass@host/db``).
        data_dir: Where scan images are stored, content-addressed by sha256.
        model_dir: The X-ray detector's model directory (``model.json`` +
            ``model.onnx``); by default the model shipped in the repository.
        runtime: ``onnx`` (ONNX Runtime; CUDA / TensorRT when present), ``openvino``
            (OpenVINO on the CPU) or ``torch``.
        precision: For ``openvino``: ``f32`` (the numbers the thresholds were chosen
            on; about 1.3 times ONNX Runtime's speed here), ``bf16`` (about 2.2 times,
            on CPUs with AVX-512 BF16 or AMX; detection rates at a re-chosen operating
            point within about 2 points: see the README) or ``auto`` (bfloat16 where
            the CPU has it).
        max_batch: Largest batch the micro-batcher forms.
        model_instances: Batches that compute at once on the loaded model, each in
            its own thread (Triton's instance count): one batch's letterboxing and
            decoding overlap another's network. Two served about 6 % more scans
            per second than one on a 2-core machine; on a GPU one is enough.
        inference_threads: The runtime's threads per batch (ONNX Runtime, OpenVINO);
            by default the physical cores divided among the instances (OpenVINO,
            whose one infer request takes batches in turn: all of them).
        max_wait_ms: Longest a request waits for a batch to fill.
        queue_size: Requests that may wait; beyond it uploads get 429.
        request_timeout_s: Per-request deadline for inference.
        max_upload_bytes: Largest accepted upload.
        max_pixels: Largest accepted image (width × height).
        alert_ack_deadline_s: An alert not acknowledged by then is re-sent and
            escalated; each later re-send waits twice as long as the one before.
        alert_max_resends: Re-sends of an unacknowledged alert; after them it stays
            open and escalated on every list but no longer makes handhelds buzz.
        sse_keepalive_s: Comment lines on idle event streams, so proxies keep them.
        inference_retries: Attempts before a scan is marked failed for good.
        demo_feed: Post synthetic scans to the server at ``demo_rate`` per second.
        demo_rate: Scans per second of the demo feed.
        bootstrap_tokens: Create one token per role at start-up and print them
            (demo and first start only; never on a server with tokens already).
        risk_pack: The declaration risk rule pack (``pack.yaml`` or its folder) served
            at start-up when no pack was activated through the API; by default the
            shipped Korean pack.
        reid_model_dir: The re-ID embedder's model directory (CCTV watch list); by
            default the one shipped in ``models/zoo/reid-osnet``. Without it the
            CCTV routes answer 503 and the X-ray path is unaffected.
        person_model_dir: The person detector's model directory (class ``person``);
            by default ``models/zoo/person-yolo11n``.
        reid_runtime: ``onnx``, ``openvino`` or ``torch`` for the CCTV models (the
            re-ID embedder and the person detector).
        reid_precision: For ``reid_runtime=openvino``: ``f32``, ``bf16`` or ``auto``,
            as ``precision``.
        reid_match_threshold: Cosine similarity at which a track matches a
            watch-list entry; by default the embedder's calibrated
            ``thresholds["match"]`` (written by ``eval reid --save-threshold``).
        reid_retention_days: Embeddings and crops of tracks that matched nothing
            (and the images of rejected sightings) are deleted after this many days.
        reid_maintenance_s: Seconds between rounds of the maintenance loop, which
            records expired watch-list entries, keeps every process's search index
            in step with the database and purges data past its retention.
        watchlist_max_days: Longest a watch-list authorisation may run from enrolment.
        cctv_workers: Threads that run camera pipelines (frames of one camera are
            always processed in order, one at a time).
        enrol_person_conf: Person-detector score a person needs in an enrolment image.
        reid_pipeline: Further settings of every camera's
            :class:`cv.models.cctv.CameraPipeline` (``conf``, ``min_track_frames``,
            ``embed_every``, ``tracker_params``...), as JSON in the environment.
        demo_cctv: Add the synthetic two-camera CCTV feed to the demo (only when
            the re-ID models are present).
        cctv_redact_bystanders: Pixelate every person but the matched one in the
            frame stored with a sighting (data minimisation: the other travellers
            in view are not kept as long as the sighting). On by default.
        cctv_restore_sources: Start the cameras' video sources again when the
            server starts (those set with ``PUT /v1/cameras/{id}/source`` and not
            stopped; a file that was read to its end is not read again). When
            several server processes share one database, leave it on in exactly
            one of them, or each process would read every source.
    """

    model_config = SettingsConfigDict(env_prefix="CV_SERVER_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///runs/server/customs-vision.db"
    data_dir: Path = Path("runs/server/images")
    model_dir: Path | None = None
    runtime: str = Field(default="onnx", pattern=f"^({'|'.join(RUNTIMES)})$")
    precision: str = Field(default="f32", pattern=f"^({'|'.join(OPENVINO_PRECISIONS)})$")
    max_batch: int = Field(default=8, ge=1, le=256)
    model_instances: int = Field(default=2, ge=1, le=16)
    inference_threads: int | None = Field(default=None, ge=1, le=256)
    max_wait_ms: float = Field(default=5.0, ge=0)
    queue_size: int = Field(default=64, ge=1)
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    alert_ack_deadline_s: float = Field(default=60.0, gt=0)
    alert_max_resends: int = Field(default=5, ge=0, le=20)
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    inference_retries: int = Field(default=3, ge=1)
    demo_feed: bool = False
    demo_rate: float = Field(default=0.5, gt=0)
    bootstrap_tokens: bool = False
    risk_pack: Path | None = None
    reid_model_dir: Path | None = None
    person_model_dir: Path | None = None
    reid_runtime: str = Field(default="onnx", pattern=f"^({'|'.join(RUNTIMES)})$")
    reid_precision: str = Field(default="f32", pattern=f"^({'|'.join(OPENVINO_PRECISIONS)})$")
    reid_match_threshold: float | None = Field(default=None, gt=0, le=1)
    reid_retention_days: float = Field(default=30.0, gt=0)
    reid_maintenance_s: float = Field(default=5.0, gt=0)
    watchlist_max_days: float = Field(default=90.0, gt=0)
    cctv_workers: int = Field(default=2, ge=1, le=64)
    enrol_person_conf: float = Field(default=0.25, gt=0, le=1)
    reid_pipeline: dict[str, Any] = Field(default_factory=dict)
    demo_cctv: bool = True
    cctv_redact_bystanders: bool = True
    cctv_restore_sources: bool = True

    @model_validator(mode="after")
    def _precision_needs_openvino(self) -> ServerSettings:
        for precision, runtime in (("precision", "runtime"), ("reid_precision", "reid_runtime")):
            if getattr(self, precision) != "f32" and getattr(self, runtime) != "openvino":
                raise ValueError(
                    f"{precision} {getattr(self, precision)} applies to {runtime} openvino "
                    f"only ({runtime} is {getattr(self, runtime)})"
                )
        return self
