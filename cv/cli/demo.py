"""``customs-vision data demo``: the data toolkit end to end in one command.

It generates a small synthetic set of bag and parcel scans, validates it, prints
its statistics and leaves behind everything a user would look at: the dataset
(YOLO + COCO), the check report, the statistics (Markdown, JSON, PNG) and a few
scans with their boxes drawn.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from cv.cli.data import app
from cv.draw import draw_boxes
from cv.image import read_image, write_image
from cv.log import console as err_console


def run_demo(*, out: str | Path, images: int, seed: int = 0, workers: int = 0) -> Path:
    """Generates, checks and describes a synthetic X-ray set under ``out``.

    Args:
        out: Output folder (created).
        images: Number of scans.
        seed: Seed of the generator.
        workers: Worker processes; 0 means one per CPU core.

    Returns:
        The dataset folder.
    """
    from cv.datasets.check import check_dataset, summary_table
    from cv.datasets.stats import dataset_stats, render_tables
    from cv.datasets.synth import generate
    from cv.settings import get_settings

    out = Path(out)
    workers = workers or get_settings().resolved_workers()
    console = Console()
    data_dir = out / "synthetic"

    err_console.print(f"[bold]1/3[/] generating {images} synthetic scans in {data_dir}")
    t0 = time.perf_counter()
    dataset = generate(data_dir, n_images=images, seed=seed, workers=workers)
    took = time.perf_counter() - t0
    err_console.print(f"    {images} scans in {took:.1f} s ({images / took:.1f} images/s)")

    err_console.print("[bold]2/3[/] checking every image and box")
    report = check_dataset(dataset, workers=workers)
    report.write_json(out / "check" / "report.json")
    report.write_markdown(out / "check" / "report.md")
    console.print(summary_table(report))

    err_console.print("[bold]3/3[/] statistics")
    stats = dataset_stats(dataset)
    for table in render_tables(stats):
        console.print(table)
    stats.write_markdown(out / "stats" / "stats.md")
    stats.write_json(out / "stats" / "stats.json")
    stats.plot(out / "stats" / "stats.png")

    samples = out / "samples"
    for record in dataset.images[:4]:
        image = read_image(dataset.image_path(record))
        labels = [f"{a.category} OL{a.occlusion_level}" for a in record.annotations]
        drawn = draw_boxes(image, [a.box for a in record.annotations], labels)
        write_image(samples / Path(record.file).name, drawn)

    console.print(
        f"\n[bold green]done.[/] dataset: {data_dir} (YOLO data.yaml + COCO annotations/)\n"
        f"  check report: {out / 'check' / 'report.md'}  ({len(report.errors)} errors, "
        f"{len(report.warnings)} warnings)\n"
        f"  statistics:   {out / 'stats' / 'stats.md'}, {out / 'stats' / 'stats.png'}\n"
        f"  scans with boxes drawn: {samples}/"
    )
    return data_dir


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Where the demo writes its data."),
    images: int = typer.Option(200, min=1, help="Number of synthetic scans to generate."),
    seed: int = typer.Option(0, help="Seed of the generator."),
    workers: int = typer.Option(0, min=0, help="Worker processes; 0 means one per core."),
) -> None:
    """Generate a synthetic X-ray set, check it and print its statistics."""
    run_demo(out=out, images=images, seed=seed, workers=workers)
