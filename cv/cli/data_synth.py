"""``customs-vision data synth | profiles | tip | tip-library`` and ``data bench synth``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cv.cli.bench import app as bench_app
from cv.cli.data import app
from cv.errors import ConfigError
from cv.log import console
from cv.settings import get_settings


def _csv(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _range(value: str, field: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in value.split("-")]
    except ValueError:
        raise ConfigError(f"expected N or LO-HI, got {value!r}", field=field) from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise ConfigError(f"expected N or LO-HI, got {value!r}", field=field)
    return parts[0], parts[1]


def _splits(value: str) -> list[float]:
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise ConfigError(
            f"expected three ratios like 0.8,0.1,0.1, got {value!r}", field="splits"
        ) from None


def _summary_table(counts: dict[str, dict[str, int]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value")
    table.add_column("count", justify="right")
    for what, items in counts.items():
        for k, v in items.items():
            table.add_row(what, k, str(v))
    return table


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder."),
    images: int = typer.Option(..., "--images", min=1, help="Number of scans."),
    size: int = typer.Option(640, "--size", min=64, help="Image width and height in pixels."),
    profiles: str = typer.Option(
        "",
        "--profiles",
        help="Scanner profiles (names or YAML "
        "paths), comma separated; default: every built-in one.",
    ),
    parcels: float = typer.Option(
        0.3, "--parcels", help="Share of express parcels (the rest are bags)."
    ),
    clean: float = typer.Option(0.2, "--clean", help="Share of clean scans."),
    threats: str = typer.Option("1-3", "--threats", help="Objects to find per scan, N or LO-HI."),
    splits: str = typer.Option("0.8,0.1,0.1", "--splits", help="train,val,test ratios."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Worker processes; 0: settings (CV_WORKERS), else one per core."
    ),
    grey: bool = typer.Option(False, "--grey", help="Single-energy grey-scale images."),
    classes: str = typer.Option(
        "",
        "--classes",
        help="Classes to place, comma separated; default: all that the generator knows.",
    ),
    containers: str = typer.Option(
        "",
        "--containers",
        help="Container kinds, comma separated (soft_bag, suitcase, backpack, parcel).",
    ),
) -> None:
    """Generate synthetic dual-energy X-ray scans with exact boxes (YOLO + COCO)."""
    from cv.datasets.synth import TARGET_CLASSES, generate, summarise

    ds = generate(
        out,
        n_images=images,
        size=(size, size),
        profiles=_csv(profiles),
        seed=seed,
        workers=workers or get_settings().resolved_workers(),
        containers=_csv(containers),
        parcel_fraction=parcels,
        clean_fraction=clean,
        threats=_range(threats, "threats"),
        classes=_csv(classes) or TARGET_CLASSES,
        splits=_splits(splits),
        grey=grey,
    )
    console.print(_summary_table(summarise(ds), f"{len(ds.images)} scans in {out}"))


@app.command("profiles")
def profiles_cmd() -> None:
    """List the built-in scanner profiles."""
    from cv.xray import list_profiles, load_profile

    table = Table(title="scanner profiles")
    for col in ("name", "resolution", "noise", "description"):
        table.add_column(col)
    for name in list_profiles():
        p = load_profile(name)
        table.add_row(name, f"{p.resolution_scale:g}", f"{p.noise:g}", p.description)
    console.print(table)


@app.command("tip-library")
def tip_library(
    out: Path = typer.Option(..., "--out", help="Library folder."),
    images: int = typer.Option(..., "--images", min=1, help="Number of threat cut-outs."),
    classes: str = typer.Option("", "--classes", help="Classes, comma separated."),
    profiles: str = typer.Option("", "--profiles", help="Scanner profiles, comma separated."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Render a library of threat cut-outs for threat image projection."""
    from cv.datasets.tip import make_threat_library

    path = make_threat_library(
        out, n=images, classes=_csv(classes), profiles=_csv(profiles), seed=seed
    )
    console.print(f"wrote {images} cut-outs and {path}")


@app.command()
def tip(
    scans: Path = typer.Option(..., "--scans", help="A scan image or a folder of them."),
    library: Path = typer.Option(..., "--library", help="Threat library folder."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    threats: str = typer.Option("1-2", "--threats", help="Threats per scan, N or LO-HI."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    split: str = typer.Option("train", "--split", help="Split the output images belong to."),
    clean: float = typer.Option(
        0.0,
        "--clean",
        help="Share of the scans left without a threat (clean bags, e.g. for choosing "
        "alert thresholds on a site's own scanner).",
    ),
) -> None:
    """Project library threats into existing scans (TIP); writes images, YOLO and COCO."""
    from cv.datasets.tip import run_tip

    lo, hi = _range(threats, "threats")
    ds = run_tip(scans, library, out, threats=(lo, hi), seed=seed, split=split, clean=clean)
    n = sum(len(r.annotations) for r in ds.images)
    left = sum(1 for r in ds.images if not r.annotations)
    console.print(
        f"projected {n} threats into {len(ds.images) - left} scans, left {left} clean, in {out}"
    )


@bench_app.command("synth")
def bench_synth_cmd(
    images: int = typer.Option(200, "--images", min=1, help="Scans to generate."),
    size: int = typer.Option(640, "--size", min=64, help="Image side in pixels."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes."),
) -> None:
    """Images/s of synthetic generation, PNG encoding and label writing included."""
    from cv.evaluation.bench_synth import TARGET_IMAGES_PER_S, bench_synth

    r = bench_synth(n_images=images, size=size, workers=workers)
    console.print(
        f"{r['images']} scans of {size}x{size} with {workers} workers in {r['seconds']:.2f} s: "
        f"[bold]{r['images_per_s']:.1f} images/s[/] "
        f"({r['ratio_to_target']:.2f} x the target of {TARGET_IMAGES_PER_S:g} images/s)"
    )
