"""Batching and admission: full queue -> 429, deadlines -> 504, batches, swap under load."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
import server_helpers as h


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    v1 = h.make_tiny_model_dir(base, name="v1", version=1)
    v2 = h.make_tiny_model_dir(base, name="v2", version=2)
    return v1, v2


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """A 640-pixel network: about 0.1 s per image on a CPU, time enough to fill a queue."""
    from cv.models.export import export_onnx
    from cv.models.load import init_model_dir

    d = tmp_path_factory.mktemp("slow") / "model"
    init_model_dir(d, architecture="yolo11n", classes=h.CLASSES, input_size=640)
    export_onnx(d)
    return d


@asynccontextmanager
async def running(app):
    """The app's lifespan and an HTTP client on one event loop (truly concurrent requests)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, h.make_tokens(app)


async def apost(client, tokens, scan_id, seed=0):
    return await client.post(
        "/v1/scans",
        files={"image": ("s.png", h.png_bytes(seed=seed), "image/png")},
        data=h.scan_form(scan_id=scan_id),
        headers=tokens["scanner"],
        timeout=60,
    )


def test_full_queue_answers_429_and_stores_nothing(tmp_path, slow_model):
    from cv.inference_server.app import create_app

    settings = h.server_settings(tmp_path, slow_model, max_batch=1, max_wait_ms=0, queue_size=1)
    app = create_app(settings)

    async def main():
        async with running(app) as (client, tokens):
            answers = await asyncio.gather(*(apost(client, tokens, f"q-{i}") for i in range(8)))
            codes = [r.status_code for r in answers]
            assert set(codes) <= {201, 429}, codes
            assert codes.count(201) >= 1 and codes.count(429) >= 1, codes
            for i, r in enumerate(answers):
                if r.status_code == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert "queue is full" in r.json()["detail"]
                    # Nothing was stored, so the scanner's retry is not a duplicate.
                    got = await client.get(f"/v1/scans/q-{i}", headers=tokens["reader"])
                    assert got.status_code == 404
                    assert (await apost(client, tokens, f"q-{i}")).status_code == 201
            text = (await client.get("/metrics")).text
            assert 'cv_inference_rejected_total{model="xray",reason="queue_full"}' in text

    asyncio.run(main())


def test_deadline_answers_504_and_the_scan_is_inferred_later(tmp_path, models):
    from cv.inference_server.app import create_app

    # The first request of a batch waits up to 400 ms for company; its deadline is 50 ms.
    settings = h.server_settings(
        tmp_path, models[0], max_batch=8, max_wait_ms=400, request_timeout_s=0.05
    )
    app = create_app(settings)

    async def main():
        async with running(app) as (client, tokens):
            r = await apost(client, tokens, "late-1")
            assert r.status_code == 504, r.text
            assert r.json()["scan_id"] == "late-1" and "deadline" in r.json()["detail"]
            scan = (await client.get("/v1/scans/late-1", headers=tokens["reader"])).json()
            assert scan["status"] in ("failed", "done")  # the retry loop may be quick
            for _ in range(150):
                scan = (await client.get("/v1/scans/late-1", headers=tokens["reader"])).json()
                if scan["status"] == "done":
                    break
                await asyncio.sleep(0.2)
            assert scan["status"] == "done" and scan["attempts"] == 2

    asyncio.run(main())


def test_concurrent_requests_share_batches(tmp_path, models):
    from cv.inference_server import metrics
    from cv.inference_server.app import create_app

    settings = h.server_settings(tmp_path, models[0], max_batch=4, max_wait_ms=300)
    app = create_app(settings)

    def batch_counts():
        sample = {
            s.name: s.value
            for m in metrics.REGISTRY.collect()
            if m.name == "cv_inference_batch_size"
            for s in m.samples
            if s.labels.get("model") == "xray"
        }
        return sample["cv_inference_batch_size_count"], sample["cv_inference_batch_size_sum"]

    async def main():
        async with running(app) as (client, tokens):
            count0, sum0 = batch_counts()
            answers = await asyncio.gather(*(apost(client, tokens, f"b-{i}", i) for i in range(8)))
            assert [r.status_code for r in answers] == [201] * 8
            count1, sum1 = batch_counts()
            assert sum1 - sum0 == 8  # every image ran once
            assert count1 - count0 < 8  # ... in fewer batches than images
            for r in answers:
                assert r.json()["timing"]["compute_ms"] > 0

    asyncio.run(main())


def test_swap_under_load_fails_no_request(tmp_path, models):
    from cv.inference_server.app import create_app

    v1, v2 = models
    app = create_app(h.server_settings(tmp_path, v1, max_batch=4, max_wait_ms=5))

    async def main():
        async with running(app) as (client, tokens):
            swapped = asyncio.Event()
            answers = []

            async def load(worker):
                i = after = 0
                # Keep posting until three requests started after the swap, so
                # requests straddle it whatever the machine's speed.
                while after < 3:
                    started_after = swapped.is_set()
                    answers.append(await apost(client, tokens, f"swap-{worker}-{i}", i))
                    after += started_after
                    i += 1

            async def swap():
                await asyncio.sleep(0.2)
                r = await client.post(
                    "/v1/admin/models/xray",
                    json={"model_dir": str(v2)},
                    headers=tokens["admin"],
                    timeout=60,
                )
                assert r.status_code == 200, r.text
                assert r.json()["versions"] == ["2"]
                swapped.set()

            await asyncio.gather(swap(), *(load(w) for w in range(4)))
            assert answers and all(r.status_code == 201 for r in answers), [
                (r.status_code, r.text) for r in answers if r.status_code != 201
            ]
            versions = [r.json()["scan"]["model_version"] for r in answers]
            assert 1 in versions and 2 in versions
            meta = (await client.get("/v2/models/xray")).json()
            assert meta["versions"] == ["2"] and meta["parameters"]["model_name"] == "tiny-v2"

    asyncio.run(main())


def test_batcher_queue_bound_and_drain(models):
    """The batcher itself, on a real detector: bounded queue, then every queued request done,
    each with the detections the detector gives that image on its own."""
    from cv.inference_server.batcher import Batcher, BatcherClosed, QueueFull
    from cv.inference_server.modelhost import score_floor
    from cv.models.load import load_detector

    detector = load_detector(models[0], max_batch=2)
    # Different sizes, so that a batch letterboxes each image its own way.
    images = [h.gradient_rgb(96, 80, seed=0), h.gradient_rgb(64, 64, seed=1)]
    images.append(h.gradient_rgb(120, 70, seed=2))
    # The floor the server uses for thresholds of 1e-4: the untrained model gives boxes.
    conf = score_floor(dict.fromkeys(h.CLASSES, h.ALERT_ALWAYS))

    async def main():
        batcher = Batcher(
            detector, label="test", max_batch=2, max_wait_ms=0, queue_size=3, conf=conf
        )
        deadline = asyncio.get_running_loop().time() + 30
        futures = [batcher.submit(image, deadline=deadline) for image in images]
        with pytest.raises(QueueFull) as full:
            batcher.submit(images[0], deadline=deadline)
        assert full.value.retry_after_s >= 1
        batcher.start()
        await batcher.drain()
        results = [f.result() for f in futures]
        assert [r.batch_size for r in results] == [2, 2, 1]
        assert all(r.queue_ms >= 0 and r.compute_ms > 0 for r in results)
        with pytest.raises(BatcherClosed):
            batcher.submit(images[0], deadline=deadline)
        return results

    results = asyncio.run(main())
    # Batching leaves the detections as they are: the same call, one image at a time.
    for image, result in zip(images, results, strict=True):
        expected = detector.predict([image], conf=conf, multi_label=True)[0]
        assert expected, "no detections to compare"
        assert_same_detections(result.detections, expected)


def assert_same_detections(got, expected, atol=1e-3):
    """Same classes, boxes (pixels) and scores, up to the last bits of batched arithmetic."""

    def key(d):
        return (d.category, *np.round(d.box, 1), round(d.score, 4))

    got, expected = sorted(got, key=key), sorted(expected, key=key)
    assert [d.category for d in got] == [d.category for d in expected]
    np.testing.assert_allclose([d.box for d in got], [d.box for d in expected], atol=atol)
    np.testing.assert_allclose([d.score for d in got], [d.score for d in expected], atol=1e-5)


def test_expired_request_is_dropped_before_compute(models):
    from cv.inference_server.batcher import Batcher, DeadlineExceeded
    from cv.models.load import load_detector

    detector = load_detector(models[0], max_batch=4)
    image = np.full((50, 70, 3), 114, dtype=np.uint8)

    async def main():
        batcher = Batcher(
            detector, label="test", max_batch=4, max_wait_ms=0, queue_size=4, conf=0.25
        )
        now = asyncio.get_running_loop().time()
        late = batcher.submit(image, deadline=now - 1)
        fine = batcher.submit(image, deadline=now + 30)
        batcher.start()
        await batcher.drain()
        assert isinstance(late.exception(), DeadlineExceeded)
        assert fine.result().batch_size == 1  # the expired one was not computed

    asyncio.run(main())


class _CountingDetector:
    """Stands in for a runtime: a batch takes 50 ms in a worker thread, counts how many
    batches compute at once, and answers each image with a detection scored by its
    first pixel (so every result can be traced to its image)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.active = self.most = 0

    def predict(self, images, *, conf, multi_label):
        import time

        from cv.records import Detection

        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
        return [[Detection((0, 0, 1, 1), "gun", 0, float(im[0, 0, 0]) / 255)] for im in images]


@pytest.mark.parametrize("instances", [1, 2, 3])
def test_instances_compute_batches_at_once_and_each_result_reaches_its_request(instances):
    from cv.inference_server.batcher import Batcher

    detector = _CountingDetector()
    images = [np.full((8, 8, 3), 10 * (i + 1), dtype=np.uint8) for i in range(9)]

    async def main():
        batcher = Batcher(
            detector,  # type: ignore[arg-type]
            label="test",
            max_batch=1,
            max_wait_ms=0,
            queue_size=9,
            conf=0.1,
            instances=instances,
        )
        deadline = asyncio.get_running_loop().time() + 30
        futures = [batcher.submit(image, deadline=deadline) for image in images]
        batcher.start()
        await batcher.drain()  # returns once every batch still computing is done
        return [f.result() for f in futures]

    results = asyncio.run(main())
    assert detector.most == instances
    assert [round(r.detections[0].score * 255) for r in results] == [10 * (i + 1) for i in range(9)]
    assert all(r.batch_size == 1 and r.compute_ms >= 50 for r in results)


def test_the_server_runs_its_instances_with_the_cores_shared_out(tmp_path, models):
    from cv.inference_server.app import create_app
    from cv.models.runtime import physical_cores

    settings = h.server_settings(tmp_path, models[0], model_instances=2)
    app = create_app(settings)

    async def main():
        async with running(app) as (client, tokens):
            host = app.state.services.extra["models"]
            assert host.active.batcher.instances == 2
            assert host.threads == max(1, physical_cores() // 2)
            opts = host.active.detector.session.get_session_options()
            assert opts.intra_op_num_threads == host.threads
            answers = await asyncio.gather(*(apost(client, tokens, f"i-{i}") for i in range(6)))
            assert [r.status_code for r in answers] == [201] * 6

    asyncio.run(main())


def test_openvino_keeps_every_core_for_its_one_request():
    # Its infer request takes the instances' batches in turn: sharing the cores out
    # would only slow each batch down.
    from cv.inference_server.modelhost import ModelHost
    from cv.models.runtime import physical_cores

    host = ModelHost(runtime="openvino", max_batch=2, max_wait_ms=0, queue_size=2, instances=2)
    assert host.threads == physical_cores()
    onnx = ModelHost(runtime="onnx", max_batch=2, max_wait_ms=0, queue_size=2, instances=2)
    assert onnx.threads == max(1, physical_cores() // 2)
    assert (
        ModelHost(runtime="onnx", max_batch=2, max_wait_ms=0, queue_size=2, threads=3).threads == 3
    )


def test_a_batch_that_breaks_unexpectedly_answers_its_requests_and_drain_waits_for_the_rest():
    # A runtime answering too few results, or anything failing after the network ran:
    # each request of that batch gets the error, and a drain still waits for the other
    # instance's batch (it returned early with the error, leaving futures unanswered).
    import threading
    import time

    from cv.inference_server.batcher import Batcher
    from cv.records import Detection

    release = threading.Event()

    class Breaking:
        def predict(self, images, *, conf, multi_label):
            if images[0][0, 0, 0] == 1:  # the slow, good batch
                release.wait(5)
                return [[Detection((0, 0, 1, 1), "gun", 0, 0.5)] for _ in images]
            return []  # one result too few

    async def main():
        batcher = Batcher(
            Breaking(),  # type: ignore[arg-type]
            label="test",
            max_batch=1,
            max_wait_ms=0,
            queue_size=4,
            conf=0.1,
            instances=2,
        )
        deadline = asyncio.get_running_loop().time() + 30
        good = batcher.submit(np.full((4, 4, 3), 1, np.uint8), deadline=deadline)
        bad = batcher.submit(np.full((4, 4, 3), 2, np.uint8), deadline=deadline)
        batcher.start()
        await asyncio.sleep(0.2)
        assert bad.done() and "answered 0 results for a batch of 1" in str(bad.exception())
        draining = asyncio.create_task(batcher.drain())
        await asyncio.sleep(0.2)
        assert not draining.done()  # the good batch is still computing
        release.set()
        started = time.monotonic()
        await asyncio.wait_for(draining, 10)
        assert time.monotonic() - started < 5
        assert good.result().detections[0].score == 0.5

    asyncio.run(main())
