"""``customs-vision bench server`` end to end on a tiny model, short and small.

The figures themselves are not checked against their targets (a benchmark, not a
timed test); what is checked is that every phase ran for real: uploads answered,
the batch size read from the server, the alert-all model swapped in, every alert
delivered to every handheld, and the JSON written.
"""

from __future__ import annotations

import json
import os

import server_helpers as helpers

from cv.cli import bench_server as _registers_bench_server  # noqa: F401
from cv.cli import main
from cv.evaluation.bench_server import bench_server, start_server, stop_server


def test_bench_server_command_measures_both_phases_on_its_own_server(tmp_path):
    model_dir = helpers.make_tiny_model_dir(tmp_path / "models")  # thresholds: never alert
    out = tmp_path / "figures.json"
    args = ["bench", "server", "--model", str(model_dir), "--images", "3", "--size", "128"]
    args += ["--uploaders", "3", "--seconds", "2", "--warmup", "0.5", "--handhelds", "5"]
    args += ["--latency-scans", "6", "--rate", "6", "--max-batch", "4", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())

    tp = result["throughput"]
    assert tp["scans"] > 0 and tp["errors"] == 0 and tp["scans_per_s"] > 0
    assert 1 <= tp["mean_batch"] <= 4
    assert result["bare_batch"]["batch"] == max(1, round(tp["mean_batch"]))
    assert result["bare_batch"]["images_per_s"] > 0 and result["bare_batch1"]["batch_ms_p50"] > 0
    assert result["ratio_vs_bare"] > 0 and result["target_vs_bare"] == 0.85
    # Where the CPU goes: the started server's process and this client, per scan.
    assert tp["server_cpu_ms_per_scan"] > 0 and tp["client_cpu_ms_per_scan"] > 0
    assert 0 < tp["server_cores"] <= os.cpu_count() + 0.5
    bare = result["bare_batch"]
    assert bare["cpu_ms_per_image"] > 0 and 0 < bare["cores"] <= os.cpu_count() + 0.5
    assert result["decode_ms"] > 0
    model_cpu = bare["cpu_ms_per_image"]
    assert result["ratio_model_and_decode_only"] == model_cpu / (model_cpu + result["decode_ms"])

    # The model never alerts; the swapped-in copy alerts on every scan.
    assert result["alert_all"]["threshold"] > 0
    assert result["alert_all"]["model"]["parameters"]["model_name"].endswith("-alert-all")
    lat = result["latency"]
    assert lat["alerting_scans"] == 6 and lat["incomplete_deliveries"] == 0
    assert lat["all_ms"]["n"] == 6 and lat["first_ms"]["p50"] <= lat["all_ms"]["p50"]
    assert lat["all_ms"]["p50"] <= lat["all_ms"]["p99"]
    assert result["latency_target_ms"] == 2 * result["bare_batch1"]["batch_ms_p50"] + 50


def test_bench_server_drives_a_running_server_by_url(tmp_path):
    # The running server is on OpenVINO: the bench sets it against ONNX Runtime's bare
    # session (the named baseline) and against OpenVINO's own bare run.
    import httpx

    model_dir = helpers.make_tiny_model_dir(tmp_path / "models", thresholds=helpers.ALERT_ALWAYS)
    server = start_server(
        model_dir, tmp_path / "running", max_batch=2, runtime="openvino", precision="f32"
    )
    try:
        meta = httpx.get(f"{server.base_url}/v2/models/xray").json()
        assert meta["platform"] == "openvino_onnx"
        result = bench_server(
            model_dir,
            url=server.base_url,
            tokens=server.tokens,
            images=2,
            size=96,
            uploaders=2,
            seconds=1.0,
            warmup_s=0.2,
            handhelds=3,
            latency_scans=4,
            rate=8.0,
            runtime="openvino",
            bare_seconds=0.2,
        )
        assert server.proc.poll() is None  # the bench leaves a server it did not start
    finally:
        stop_server(server)
    assert result["server"] == server.base_url and result["alert_all"] is None
    # Another process's server: its CPU is not the bench's to read.
    assert result["throughput"]["server_cpu_ms_per_scan"] is None
    assert result["throughput"]["scans"] > 0
    assert result["latency"]["alerting_scans"] == 4  # this model's own thresholds alert
    assert result["latency"]["incomplete_deliveries"] == 0
    assert result["runtime"] == "openvino (f32)"
    own, ort = result["bare_own_batch"], result["bare_batch"]
    assert own["batch"] == ort["batch"] and own["images_per_s"] > 0
    assert result["ratio_vs_own_bare"] == result["throughput"]["scans_per_s"] / own["images_per_s"]
    assert result["latency_target_ms"] == 2 * result["bare_own_batch1"]["batch_ms_p50"] + 50


def test_bench_server_refuses_a_precision_without_openvino_before_starting(tmp_path, capsys):
    # Left to the started server, the refusal would only be in its log.
    args = ["bench", "server", "--model", str(tmp_path / "none"), "--precision", "bf16"]
    assert main(args) == 2
    assert "--precision bf16 applies to --runtime openvino only" in capsys.readouterr().err
    args = ["bench", "server", "--runtime", "tensorrt"]
    assert main(args) == 2
    assert "unknown runtime 'tensorrt'" in capsys.readouterr().err
