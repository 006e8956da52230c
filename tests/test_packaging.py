"""The wheel holds every module under the one import root `cv`, and each imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Top-level folder -> import name; must match [tool.setuptools] package-dir.
MOUNTS = {
    "cv": "cv",
    "models": "cv.models",
    "datasets": "cv.datasets",
    "training": "cv.training",
    "evaluation": "cv.evaluation",
    "inference_server": "cv.inference_server",
}


def _parents(rel: Path) -> list[Path]:
    return [Path(*rel.parts[:i]) for i in range(len(rel.parts))]


def _source_modules() -> dict[str, str]:
    """Wheel path -> module name, for every .py file in the mounted folders."""
    found = {}
    for folder, pkg in MOUNTS.items():
        for py in sorted((ROOT / folder).rglob("*.py")):
            rel = py.relative_to(ROOT / folder)
            # Files in folders without __init__.py (Alembic migrations) are package
            # data, not modules; the data checks below cover them.
            if not all((ROOT / folder / d / "__init__.py").is_file() for d in _parents(rel)):
                continue
            parts = [*pkg.split("."), *rel.with_suffix("").parts]
            wheel_path = "/".join([*pkg.split("."), *rel.parts])
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[wheel_path] = ".".join(parts)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build/ folder could carry stale modules into the wheel.
    src = tmp_path_factory.mktemp("src") / "customs-vision"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "runs", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True,
        cwd=out,
    )  # fmt: skip
    (whl,) = out.glob("customs_vision-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_contains_every_module_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(p for p in _source_modules() if p not in names)
    assert not missing, f"modules missing from the wheel (package list in pyproject): {missing}"
    assert not [n for n in names if n.split("/")[0] in MOUNTS.keys() - {"cv"}], (
        "a folder was installed as its own top-level package"
    )
    data = {
        "cv/profiles": ROOT / "cv/profiles",
        "cv/datasets/class_maps": ROOT / "datasets/class_maps",
        "cv/inference_server/migrations": ROOT / "inference_server/migrations",
        "cv/inference_server/migrations/versions": ROOT / "inference_server/migrations/versions",
        "cv/inference_server/static": ROOT / "inference_server/static",
        "cv/models/risk/packs/kr": ROOT / "models/risk/packs/kr",
        "cv/training/configs": ROOT / "training/configs",
    }
    for wheel_dir, src in data.items():
        for f in src.glob("*.*"):
            if f.suffix in (".yaml", ".py", ".mako", ".html", ".js", ".css", ".csv"):
                assert f"{wheel_dir}/{f.name}" in names, f"{f} missing from the wheel"
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: AGPL-3.0-or-later" in text
    assert "Requires-Dist: torch==2.15.0" in text
    assert "Requires-Dist: torchvision==0.29.2" in text


@pytest.mark.slow
def test_every_module_imports_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    # __main__ modules run the program when imported; they are entry points, not libraries.
    modules = sorted(m for m in set(_source_modules().values()) if not m.endswith("__main__"))
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "import cv\n"
        f"assert cv.__file__.startswith({str(target)!r}), cv.__file__\n"
        f"for m in {modules!r}:\n"
        "    mod = importlib.import_module(m)\n"
        f"    assert mod.__file__.startswith({str(target)!r}), (m, mod.__file__)\n"
    )
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


def test_importing_cv_has_no_heavy_side_effects():
    code = (
        "import sys, cv, cv.boxes, cv.records, cv.errors, cv.taxonomy, cv.cli\n"
        "heavy = [m for m in ('torch', 'ultralytics', 'matplotlib', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
