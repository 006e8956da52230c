"""`customs-vision data demo` runs the data toolkit end to end."""

from __future__ import annotations

import json

from cv.cli import main
from cv.image import read_image


def test_demo_generates_checks_and_describes(tmp_path, capsys):
    assert main(["data", "demo", "--out", str(tmp_path), "--images", "6", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "done." in out
    assert (tmp_path / "synthetic" / "data.yaml").is_file()
    report = json.loads((tmp_path / "check" / "report.json").read_text())
    assert report["ok"] and report["errors"] == 0 and report["images"] == 6
    stats = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert stats["images"] == 6 and stats["annotations"] == report["annotations"]
    assert read_image(tmp_path / "stats" / "stats.png").shape[2] == 3
    assert len(list((tmp_path / "samples").glob("*.png"))) == 4
