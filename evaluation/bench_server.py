"""Benchmark of the inference server over HTTP on loopback (not a timed test).

It starts ``customs-vision serve run`` in a subprocess on a free port of 127.0.0.1
with a temporary SQLite database (or drives a running server given by URL) and
measures, on the same synthetic scans:

1. **Throughput.** ``uploaders`` concurrent clients (httpx, async) post the same
   ``M`` PNG scans for ``seconds`` (after a warm-up) → scans/s answered ``201``.
   Then, in this process and with the server idle, the **bare ONNX Runtime
   session** of the same model runs the same images as letterboxed ``float32``
   tensors made beforehand, **at the mean batch size the server formed** in the
   measured window (read from its ``/metrics``) → images/s. Target: the server at
   least :data:`TARGET_VS_BARE` of the bare session. The server's figure pays for
   everything a scan costs (HTTP, multipart, PNG decode, sha256 and image store,
   two commits, letterbox, decoding and NMS, the alert); the bare one only for
   ``session.run``. A server started on another runtime (``runtime="openvino"``)
   is also set against that runtime's own bare run, which tells what the server
   around the model costs.
2. **Latency.** ``handhelds`` SSE streams are open (``GET /v1/alerts/stream``,
   filtered to the bench's own site, so other traffic does not count) while
   uploads arrive at a steady ``rate`` below saturation. On its own server the
   bench first swaps in (``POST /v1/admin/models/xray``) a copy of the model whose
   thresholds make every scan alert (:func:`alert_all_threshold`). Per scan: time
   from the start of the upload request to the alert event received by the first
   and by all handhelds → p50 / p99. Target: p99 (all) at most twice the model's
   own batch-1 latency (bare run on the server's runtime, median, same images)
   plus :data:`LATENCY_SLACK_MS`.

Clients, server and bare session share this machine's cores (loopback), so the
figures are for one machine doing everything; what else runs on it (a training
run) slows them all.

3. **Where the CPU goes.** Over the same throughput window the bench reads the CPU
   time of the server process (all its threads, ``psutil``; only for a server it
   started) and of its own client, per scan answered; over the bare run, the CPU
   time per image and the cores the session kept busy; and, in this process, the
   time to decode one of the PNG uploads. With nothing but the model and the
   decode per scan, on cores the bare session keeps busy, the ratio could be at
   most ``bare CPU per image / (that + decode)``: a ceiling no server code removes
   while the decode shares the model's cores. (The bare session's idle pool
   threads spin, as ONNX Runtime's do by default, so its CPU per image is the
   cores it holds, if anything more than its work: the ceiling errs high.)

This module talks to the server only over HTTP and starts it through the CLI: the
evaluation layer does not import the serving code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

TARGET_VS_BARE = 0.85
"""Server scans/s over bare-session images/s at the server's batch size."""
LATENCY_SLACK_MS = 50.0
"""p99 upload-to-alert target: ``2 × batch-1 latency + LATENCY_SLACK_MS``."""

_TOKEN_LINE = re.compile(r"^\s+(scanner|reader|inspector|admin)\s+(cvt_\S+)\s*$", re.M)
_BATCH_METRIC = re.compile(r'^cv_inference_batch_size_(sum|count)\{model="xray"\}\s+(\S+)$', re.M)


# -- the server under test --------------------------------------------------------------


@dataclass
class Server:
    """A server the bench drives.

    Attributes:
        base_url: ``http://127.0.0.1:PORT``.
        tokens: Role -> token secret (``scanner`` and ``inspector`` at least).
        proc: The server process when the bench started it.
        log: Its combined stdout / stderr.
    """

    base_url: str
    tokens: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model_dir: Path,
    work_dir: Path,
    *,
    max_batch: int | None = None,
    max_wait_ms: float | None = None,
    runtime: str | None = None,
    precision: str | None = None,
    instances: int | None = None,
    threads: int | None = None,
    startup_timeout_s: float = 300.0,
) -> Server:
    """Starts ``customs-vision serve run`` on a free loopback port with a fresh SQLite database.

    It makes bootstrap tokens (one per role), read back from its output. The
    process gets no other ``CV_SERVER_*`` variable from this one, and runs in
    ``work_dir`` (so no ``.env`` applies).

    Args:
        model_dir: The model to serve.
        work_dir: Holds the database, the image store and the server's log.
        max_batch: The batcher's largest batch; the server's default if ``None``.
        max_wait_ms: The batcher's longest wait; the server's default if ``None``.
        runtime: ``onnx``, ``openvino`` or ``torch``; the server's default if ``None``.
        precision: For ``openvino``: ``f32``, ``bf16`` or ``auto``.
        instances: Batches computing at once; the server's default if ``None``.
        threads: The runtime's threads per batch; the server's default if ``None``.
        startup_timeout_s: How long model load and warm-up may take.

    Raises:
        RuntimeError: If the server exits or is not ready in time (its log attached).
    """
    if not (Path(model_dir) / "model.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model directory (no model.json)")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CV_SERVER_")}
    env.update(CV_SERVER_DATA_DIR=str(work_dir / "images"), CV_SERVER_BOOTSTRAP_TOKENS="true")
    if max_batch is not None:
        env["CV_SERVER_MAX_BATCH"] = str(max_batch)
    if max_wait_ms is not None:
        env["CV_SERVER_MAX_WAIT_MS"] = str(max_wait_ms)
    if runtime is not None:
        env["CV_SERVER_RUNTIME"] = runtime
    if precision is not None:
        env["CV_SERVER_PRECISION"] = precision
    if instances is not None:
        env["CV_SERVER_MODEL_INSTANCES"] = str(instances)
    if threads is not None:
        env["CV_SERVER_INFERENCE_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "cv.cli", "serve", "run", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--model", str(Path(model_dir).resolve())]
    cmd += ["--db", f"sqlite:///{(work_dir / 'bench.db').resolve()}"]
    log = work_dir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=work_dir, stdout=out, stderr=subprocess.STDOUT)
    server = Server(base_url=f"http://127.0.0.1:{port}", tokens={}, proc=proc, log=log)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(
                f"the server was not ready in {startup_timeout_s:g} s:\n{_tail(log)}"
            )
        try:
            answer = httpx.get(f"{server.base_url}/v2/health/ready", timeout=5)
        except httpx.TransportError:
            time.sleep(0.3)  # not listening yet: it loads and warms the model up first
            continue
        if answer.status_code == 200:
            server.tokens = dict(_TOKEN_LINE.findall(log.read_text(errors="replace")))
            return server
        # It listens only once start-up is over, so "not ready" now stays so.
        stop_server(server)
        raise RuntimeError(f"the server started but is not ready: {answer.text}\n{_tail(log)}")


def stop_server(server: Server) -> None:
    """Stops a server the bench started (SIGTERM, then SIGKILL after 30 s)."""
    if server.proc is None or server.proc.poll() is not None:
        return
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else ""


def batch_totals(base_url: str) -> tuple[float, float]:
    """``(images, batches)`` the server's batcher has run so far (from ``/metrics``)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    values = {kind: float(v) for kind, v in _BATCH_METRIC.findall(text)}
    return values.get("sum", 0.0), values.get("count", 0.0)


# -- images and models ---------------------------------------------------------------------


def synthetic_pngs(n: int, *, size: int = 640, seed: int = 0) -> tuple[list[bytes], list[NDArray]]:
    """``n`` synthetic ``size × size`` scans as PNG files and as RGB arrays (the same pixels)."""
    from cv.evaluation.bench_detector import synthetic_images
    from cv.image import encode_png

    images = synthetic_images(n, size=size, seed=seed)
    return [encode_png(im) for im in images], images


def alert_all_threshold(detector: Any, images: Sequence[NDArray]) -> tuple[float, float]:
    """A score threshold that every image passes with at least one detection.

    The lowest of the images' top scores, less a margin for the last bits that
    batching may change in the network's output.

    Returns:
        The threshold and the mean number of detections per image at or above it
        (the boxes an alert will carry).
    """
    results = detector.predict(list(images), conf=1e-6)
    tops = [max((d.score for d in r), default=0.0) for r in results]
    threshold = min(tops) * (1 - 1e-3)
    if threshold <= 0:
        raise RuntimeError("the model finds nothing at all in some images: no threshold alerts")
    boxes = [sum(1 for d in r if d.score >= threshold) for r in results]
    return threshold, float(np.mean(boxes))


def alert_all_copy(model_dir: Path, out_dir: Path, threshold: float) -> Path:
    """A copy of a model directory whose every class alerts at ``threshold``."""
    from cv.models.weights import read_record, write_record

    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(model_dir, out_dir)
    record = read_record(out_dir, verify=False)
    record.thresholds = dict.fromkeys(record.classes, threshold)
    record.name = f"{record.name}-alert-all"
    record.version += 1
    write_record(record, out_dir)
    return out_dir


def bare_session(
    detector: Any, images: Sequence[NDArray], *, batch: int, min_seconds: float, warmup: int = 3
) -> dict[str, float]:
    """Images/s and per-run latency of the network alone at a batch size.

    The tensors are letterboxed beforehand from the same images (cycled to fill
    the batches), so only :meth:`Detector.infer` is timed: ONNX Runtime's
    ``session.run`` or OpenVINO's ``infer``, plus a dtype check.

    Returns:
        ``images_per_s``, ``batch_ms_p50``, ``batch_ms_mean``, ``runs``, and the
        process's CPU time per image and mean busy cores over the timed runs
        (``cpu_ms_per_image``, ``cores``; nothing else should run in this process).
    """
    n = max(len(images), batch)
    order = [images[i % len(images)] for i in range(n - n % batch)]  # whole batches
    tensors = [detector.preprocess(order[i : i + batch])[0] for i in range(0, len(order), batch)]
    tensors = [t.astype(getattr(detector, "input_dtype", np.float32)) for t in tensors]
    for i in range(warmup):
        detector.infer(tensors[i % len(tensors)])
    times: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < min_seconds or len(times) < len(tensors):
        t0 = time.perf_counter()
        detector.infer(tensors[len(times) % len(tensors)])
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu_started  # every thread of this process: the runtime's pool
    wall = time.perf_counter() - started
    spent = sum(times)
    return {
        "images_per_s": len(times) * batch / spent,
        "batch_ms_p50": float(np.median(times) * 1000),
        "batch_ms_mean": spent / len(times) * 1000,
        "runs": len(times),
        "cpu_ms_per_image": cpu / (len(times) * batch) * 1000,
        "cores": cpu / wall,
    }


# -- load ------------------------------------------------------------------------------------


def _form(scan_id: str, site: str) -> dict[str, str]:
    return {"scan_id": scan_id, "site": site, "lane": "BENCH-1", "kind": "cabin_bag"}


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(5.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


async def throughput(
    server: Server,
    pngs: Sequence[bytes],
    *,
    uploaders: int,
    seconds: float,
    warmup_s: float,
    site: str,
    run: str,
) -> dict[str, Any]:
    """Scans/s through the server: ``uploaders`` clients post in a loop for ``warmup_s + seconds``.

    Only uploads answered within the measured window count; the server's mean
    batch size over the window comes from its ``/metrics``, and the CPU that the
    server process (when the bench started it) and this client used in the window
    per scan answered, from ``psutil`` and :func:`time.process_time`.
    """
    loop = asyncio.get_running_loop()
    headers = {"Authorization": f"Bearer {server.tokens['scanner']}"}
    counts = {"ok": 0, "429": 0, "other": 0}
    start = loop.time()
    window = (start + warmup_s, start + warmup_s + seconds)
    limits = httpx.Limits(max_connections=uploaders + 2)

    async def uploader(k: int, client: httpx.AsyncClient) -> None:
        n = 0
        while loop.time() < window[1]:
            n += 1
            png = pngs[(k + n * uploaders) % len(pngs)]
            files = {"image": ("scan.png", png, "image/png")}
            r = await client.post(
                "/v1/scans", data=_form(f"bench-{run}-t{k}-{n}", site), files=files
            )
            now = loop.time()
            inside = window[0] <= now <= window[1]
            if r.status_code == 201:
                counts["ok"] += int(inside)
            elif r.status_code == 429:
                counts["429"] += 1
                await asyncio.sleep(_retry_after(r))
            else:
                counts["other"] += 1
                if counts["other"] == 1:
                    print(f"upload answered {r.status_code}: {r.text[:300]}", file=sys.stderr)

    async def snapshot() -> tuple[float, float, float | None, float]:
        images, batches = await asyncio.to_thread(batch_totals, server.base_url)
        return images, batches, server_cpu_s(server), time.process_time()

    async def snapshots() -> tuple[tuple[float, float, float | None, float], ...]:
        await asyncio.sleep(warmup_s)
        first = await snapshot()
        await asyncio.sleep(max(0.0, window[1] - loop.time()))
        return first, await snapshot()

    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, timeout=60, limits=limits
    ) as client:
        watcher = asyncio.create_task(snapshots())
        await asyncio.gather(*(uploader(k, client) for k in range(uploaders)))
        (img0, n0, srv0, cli0), (img1, n1, srv1, cli1) = await watcher
    batches, scans = n1 - n0, counts["ok"]
    return {
        "uploaders": uploaders,
        "seconds": seconds,
        "scans": scans,
        "scans_per_s": scans / seconds,
        "rejected_429": counts["429"],
        "errors": counts["other"],
        "mean_batch": (img1 - img0) / batches if batches else 0.0,
        # CPU over the window per scan answered in it (the batch snapshots bracket it).
        "server_cpu_ms_per_scan": (
            None if srv0 is None or srv1 is None or not scans else (srv1 - srv0) / scans * 1000
        ),
        "server_cores": None if srv0 is None or srv1 is None else (srv1 - srv0) / seconds,
        "client_cpu_ms_per_scan": (cli1 - cli0) / scans * 1000 if scans else None,
    }


def server_cpu_s(server: Server) -> float | None:
    """CPU seconds (user + system, all threads) the server process has used so far.

    ``None`` for a server the bench did not start, or one that has exited.
    """
    if server.proc is None:
        return None
    import psutil

    try:
        times = psutil.Process(server.proc.pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return float(times.user + times.system)


def decode_ms(pngs: Sequence[bytes], *, rounds: int = 5) -> float:
    """Median milliseconds to decode one of ``pngs`` as the server does (this process)."""
    from cv.image import decode_image

    times = []
    for _ in range(rounds):
        for png in pngs:
            t0 = time.perf_counter()
            decode_image(png, name="bench")
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


async def latency(
    server: Server,
    pngs: Sequence[bytes],
    *,
    handhelds: int,
    scans: int,
    rate: float,
    site: str,
    run: str,
    deliver_timeout_s: float = 30.0,
) -> dict[str, Any]:
    """Upload-to-alert latency with ``handhelds`` SSE streams open, at ``rate`` uploads/s.

    Returns:
        Per-scan milliseconds to the first and to the last (all) handheld, their
        p50 / p99, the upload answers' p50 / p99, and counts of alerts missing.
    """
    loop = asyncio.get_running_loop()
    scanner = {"Authorization": f"Bearer {server.tokens['scanner']}"}
    inspector = {"Authorization": f"Bearer {server.tokens['inspector']}"}
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    alerting: set[str] = set()
    received: dict[str, list[float]] = {}
    hello = asyncio.Semaphore(0)
    all_in = asyncio.Event()
    failures = {"uploads": 0}

    async def handheld(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/v1/alerts/stream", params={"site": site}) as response:
            response.raise_for_status()
            event: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    continue
                if line:
                    key, _, value = line.partition(":")
                    event[key] = value.lstrip(" ")
                    continue
                now = loop.time()
                if event.get("event") == "hello":
                    hello.release()
                elif event.get("event") == "alert" and "id" in event:
                    # The scan id sits early in the payload; a full JSON parse per
                    # event and handheld would load this one process needlessly.
                    match = re.search(r'"scan_id":"([^"]+)"', event.get("data", ""))
                    if match:
                        times = received.setdefault(match[1], [])
                        times.append(now)
                        if len(times) == handhelds and alerting <= _complete(received, handhelds):
                            all_in.set()
                event = {}

    async def upload(client: httpx.AsyncClient, scan_id: str, png: bytes) -> None:
        started[scan_id] = loop.time()
        files = {"image": ("scan.png", png, "image/png")}
        try:
            r = await client.post("/v1/scans", data=_form(scan_id, site), files=files)
        except httpx.TransportError:
            failures["uploads"] += 1
            return
        answered[scan_id] = loop.time()
        if r.status_code != 201:
            failures["uploads"] += 1
        elif r.json().get("alert") is not None:
            alerting.add(scan_id)

    stream_limits = httpx.Limits(max_connections=handhelds + 2, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(
            base_url=server.base_url, headers=inspector, timeout=None, limits=stream_limits
        ) as streams,
        httpx.AsyncClient(base_url=server.base_url, headers=scanner, timeout=60) as uploads,
    ):
        readers = [asyncio.create_task(handheld(streams)) for _ in range(handhelds)]
        try:
            for _ in range(handhelds):
                await asyncio.wait_for(hello.acquire(), 60)
            tasks = []
            next_at = loop.time()
            for n in range(scans):
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                scan_id = f"bench-{run}-l{n}"
                tasks.append(asyncio.create_task(upload(uploads, scan_id, pngs[n % len(pngs)])))
                next_at += 1.0 / rate
            await asyncio.gather(*tasks)
            if alerting and not alerting <= _complete(received, handhelds):
                all_in.clear()
                # A delivery wait that runs out is reported (incomplete), not raised.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_in.wait(), deliver_timeout_s)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    first_ms, all_ms = [], []
    missing = 0
    for scan_id in sorted(alerting):
        times = received.get(scan_id, [])
        if len(times) < handhelds:
            missing += 1
            continue
        first_ms.append((min(times) - started[scan_id]) * 1000)
        all_ms.append((max(times) - started[scan_id]) * 1000)
    answer_ms = [(answered[s] - started[s]) * 1000 for s in answered]
    return {
        "handhelds": handhelds,
        "rate": rate,
        "scans": scans,
        "alerting_scans": len(alerting),
        "incomplete_deliveries": missing,
        "upload_failures": failures["uploads"],
        "first_ms": _percentiles(first_ms),
        "all_ms": _percentiles(all_ms),
        "upload_answer_ms": _percentiles(answer_ms),
    }


def _complete(received: dict[str, list[float]], handhelds: int) -> set[str]:
    return {s for s, times in received.items() if len(times) >= handhelds}


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "n": len(values),
    }


# -- the whole bench -----------------------------------------------------------------------


def bench_server(
    model_dir: Path | None = None,
    *,
    url: str | None = None,
    tokens: dict[str, str] | None = None,
    images: int = 32,
    size: int = 640,
    uploaders: int = 8,
    seconds: float = 20.0,
    warmup_s: float = 3.0,
    handhelds: int = 50,
    latency_scans: int = 100,
    rate: float | None = None,
    max_batch: int | None = None,
    max_wait_ms: float | None = None,
    runtime: str = "onnx",
    precision: str = "f32",
    instances: int | None = None,
    threads: int | None = None,
    bare_seconds: float = 5.0,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Runs the throughput and latency measurements (see the module docstring).

    Args:
        model_dir: The model to serve and to time bare; ``None``: the shipped default
            model, else an untrained yolo11n (13 classes) exported at 640 px.
        url: A running server to drive instead of starting one (its model must be
            ``model_dir``'s for the bare comparison to mean anything).
        tokens: With ``url``: ``scanner`` and ``inspector`` token secrets.
        images: Synthetic scans posted (``M``).
        size: Their side in pixels.
        uploaders: Concurrent uploaders of the throughput phase.
        seconds: Measured seconds of the throughput phase.
        warmup_s: Unmeasured seconds before it.
        handhelds: SSE streams open during the latency phase.
        latency_scans: Uploads in the latency phase.
        rate: Uploads/s of the latency phase; by default half the measured
            throughput, at most 10/s.
        max_batch: The started server's largest batch (its default if ``None``).
        max_wait_ms: The started server's batch wait (its default if ``None``).
        runtime: The started server's runtime, ``onnx`` or ``openvino`` (with
            ``url``: what the running server uses).
        precision: With ``openvino``: ``f32``, ``bf16`` or ``auto``.
        instances: The started server's model instances (its default if ``None``).
        threads: The started server's runtime threads per batch (its default if ``None``).
        bare_seconds: Least time each bare-session measurement runs.
        work_dir: Where the started server keeps its files; a temporary folder
            (removed afterwards) by default.

    Returns:
        ``throughput``, ``bare_batch`` and ``bare_batch1`` (ONNX Runtime at the
        server's batch size and at 1), ``bare_own_batch`` and ``bare_own_batch1``
        (the server's own runtime, the same as the former for ``onnx``),
        ``latency``, targets and ratios, where the CPU goes (``decode_ms`` and
        ``ratio_model_and_decode_only``, see the module docstring; from the server's
        own runtime's bare run), and what was
        measured (model, images, settings).
    """
    from cv.evaluation.bench_detector import untrained_model_dir
    from cv.models.load import (
        check_runtime_options,
        default_model_dir,
        load_detector,
        load_onnx_detector,
    )
    from cv.models.runtime import OPENVINO_PRECISIONS

    # Checked here, not by the started server, whose refusal would only be in its log.
    check_runtime_options(runtime, precision, precisions=OPENVINO_PRECISIONS)

    own_tmp = None
    if work_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="cv-bench-server-")
        work_dir = Path(own_tmp.name)
    work_dir.mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    try:
        untrained = False
        if model_dir is None:
            default = default_model_dir()
            if (default / "model.json").is_file():
                model_dir = default
            else:
                model_dir = untrained_model_dir(work_dir / "untrained", input_size=size)
                untrained = True
        pngs, arrays = synthetic_pngs(images, size=size)
        run = secrets.token_hex(3)
        # The latency phase has a site of its own: its handhelds connect without a last
        # id, so on the throughput phase's site they would first replay its open alerts
        # (hundreds each), and the first uploads would wait behind that replay.
        site = f"BENCH-{run}"
        latency_site = f"BENCH-{run}-L"

        if url is None:
            server = start_server(
                Path(model_dir),
                work_dir,
                max_batch=max_batch,
                max_wait_ms=max_wait_ms,
                runtime=runtime,
                precision=precision,
                instances=instances,
                threads=threads,
            )
        else:
            if not tokens or not {"scanner", "inspector"} <= tokens.keys():
                raise ValueError("tokens: a running server needs scanner and inspector tokens")
            server = Server(base_url=url.rstrip("/"), tokens=dict(tokens))

        tp = asyncio.run(
            throughput(
                server,
                pngs,
                uploaders=uploaders,
                seconds=seconds,
                warmup_s=warmup_s,
                site=site,
                run=run,
            )
        )

        decode = decode_ms(pngs)
        batch = max(1, round(tp["mean_batch"]))
        detector = load_onnx_detector(model_dir, max_batch=max(batch, 1))
        bare_batch = bare_session(detector, arrays, batch=batch, min_seconds=bare_seconds)
        bare_one = bare_session(detector, arrays, batch=1, min_seconds=bare_seconds)
        own_batch, own_one, own_label = bare_batch, bare_one, detector.label
        if runtime != "onnx":
            own = load_detector(
                model_dir,
                runtime=runtime,  # type: ignore[arg-type]
                precision=precision,  # type: ignore[arg-type]
                max_batch=max(batch, 1),
            )
            own_batch = bare_session(own, arrays, batch=batch, min_seconds=bare_seconds)
            own_one = bare_session(own, arrays, batch=1, min_seconds=bare_seconds)
            own_label = own.label
            del own

        swapped = None
        if server.proc is not None:
            threshold, boxes = alert_all_threshold(detector, arrays)
            copy = alert_all_copy(Path(model_dir), work_dir / "alert-all", threshold)
            admin = {"Authorization": f"Bearer {server.tokens['admin']}"}
            r = httpx.post(
                f"{server.base_url}/v1/admin/models/xray",
                json={"model_dir": str(copy.resolve())},
                headers=admin,
                timeout=300,
            )
            r.raise_for_status()
            swapped = {"threshold": threshold, "boxes_per_alert": boxes, "model": r.json()}
        input_size = detector.input_size
        del detector

        lat_rate = rate if rate is not None else min(10.0, max(0.5, tp["scans_per_s"] / 2))
        lat = asyncio.run(
            latency(
                server,
                pngs,
                handhelds=handhelds,
                scans=latency_scans,
                rate=lat_rate,
                site=latency_site,
                run=run,
            )
        )
    finally:
        if server is not None and server.proc is not None:
            stop_server(server)
        if own_tmp is not None:
            own_tmp.cleanup()

    target_ms = 2 * own_one["batch_ms_p50"] + LATENCY_SLACK_MS
    p99_all = lat["all_ms"]["p99"]
    model_cpu = own_batch["cpu_ms_per_image"]
    return {
        "model": str(model_dir) if not untrained else "untrained yolo11n (13 classes, temporary)",
        "untrained": untrained,
        "images": images,
        "size": size,
        "input_size": input_size,
        "server": "started (SQLite, temporary)" if url is None else url,
        "throughput": tp,
        "bare_batch": {"batch": batch, **bare_batch},
        "bare_batch1": bare_one,
        "ratio_vs_bare": tp["scans_per_s"] / bare_batch["images_per_s"],
        "runtime": own_label,
        "bare_own_batch": {"batch": batch, **own_batch},
        "bare_own_batch1": own_one,
        "ratio_vs_own_bare": tp["scans_per_s"] / own_batch["images_per_s"],
        "target_vs_bare": TARGET_VS_BARE,
        "alert_all": swapped,
        "latency": lat,
        "latency_target_ms": target_ms,
        "latency_ratio": None if p99_all is None else p99_all / target_ms,
        "decode_ms": decode,
        "ratio_model_and_decode_only": model_cpu / (model_cpu + decode),
        "cpu_count": os.cpu_count(),
    }
