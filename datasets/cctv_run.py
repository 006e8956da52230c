"""Running generation jobs: in this process or a process pool, in order, with progress."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from cv.errors import ConfigError

GENERATOR_VERSION = 1
"""Version of the synthetic CCTV drawing: bumped whenever the same options and seed
would give other pixels, so that caches keyed on the options can tell (it is written
into every manifest)."""

J = TypeVar("J")
R = TypeVar("R")


def run_jobs(
    jobs: Sequence[J], fn: Callable[[J], R], *, workers: int, label: str, show: bool | None
) -> list[R]:
    """Runs ``fn`` over ``jobs`` in this process or in ``workers`` processes, in order.

    Args:
        jobs: Picklable job descriptions.
        fn: A module-level function of one job.
        workers: 1 runs in this process; more start a process pool.
        label: Text of the progress bar.
        show: Show the progress bar; ``None`` shows it when stderr is a terminal.

    Returns:
        ``fn``'s results in the order of ``jobs``.
    """
    from cv.log import progress

    results: list[R] = []
    with progress(disable=None if show is None else not show) as bar:
        task = bar.add_task(label, total=len(jobs))
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(fn(job))
                bar.advance(task)
        else:
            chunk = max(1, min(64, len(jobs) // (workers * 8)))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for r in pool.map(fn, jobs, chunksize=chunk):
                    results.append(r)
                    bar.advance(task)
    return results


def resolve_workers(workers: int) -> int:
    """``workers`` processes, or one per CPU core for 0 (the settings' convention)."""
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}", field="workers")
    return workers or max(1, os.cpu_count() or 1)


def prepare_out(out: Path, names: tuple[str, ...], *, overwrite: bool) -> None:
    """Makes ``out`` ready: refuses to mix a new run into an old one unless told to.

    Raises:
        ConfigError: If one of ``names`` in ``out`` exists and is not empty, and
            ``overwrite`` is false.
    """
    taken = [
        n
        for n in names
        if (out / n).exists() and (not (out / n).is_dir() or any((out / n).iterdir()))
    ]
    if taken and not overwrite:
        raise ConfigError(
            f"{out} already holds {', '.join(taken)}; choose a new folder or overwrite it "
            "(overwrite=True, --overwrite)",
            path=out,
        )
    for n in taken:
        p = out / n
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def tool_version() -> str:
    """The installed customs-vision version, or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("customs-vision")
    except PackageNotFoundError:
        return "unknown"
