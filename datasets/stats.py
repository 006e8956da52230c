"""What is in a dataset: counts per class, split and subset, box sizes, occlusion, image sizes.

:func:`dataset_stats` reads only the records (no image is decoded: sizes come
from ``ImageRecord.width``/``height``), so it runs in about a second on 100k
annotations. The resulting :class:`DatasetStats` holds plain numbers and writes
itself as Markdown tables, JSON and one PNG of plots; :func:`render_tables`
gives the main tables as rich tables for the terminal.

Box sizes follow COCO's buckets on the box area ``w * h`` in pixels: small
``< 32²``, medium ``32²`` up to ``< 96²``, large ``>= 96²``. A box without a
finite, positive width and height has no size and is counted as ``invalid``,
so the buckets of a class always add up to its boxes.

A dataset read with ``problems="record"`` (what ``data stats`` does) is counted
as far as it could be read: the objects of classes the class map does not know
are listed per name with the place each was first seen, and the entries the
reader could not read are counted (``data check`` lists each one). An image
whose header cannot be read has no size: it is left out of the image sizes (the
count says how many), and the objects it could not hold are counted as left out.
A clean image is a clean bag (:func:`~cv.datasets.formats.common.is_clean`): no
box, and no object the reader left out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cv.datasets.formats.common import is_clean, trace_key, trace_place
from cv.records import CONCEALMENT_MODES, SPLITS, Dataset, occlusion_level
from cv.taxonomy import NAMES

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from rich.table import Table

SMALL_AREA = 32**2
"""Boxes with a smaller area (pixels²) are ``small`` (COCO)."""
MEDIUM_AREA = 96**2
"""Boxes of at least :data:`SMALL_AREA` and a smaller area than this are ``medium``."""
SIZE_BUCKETS = ("small", "medium", "large", "invalid")
NO_SPLIT = "unassigned"
"""Split name used for images without one."""
OCCLUSION_KEYS = ("1", "2", "3", "unknown")
SIDE_EDGES = (0, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, math.inf)
"""Bin edges of the box-side histogram, in pixels of ``sqrt(w * h)``."""
QUANTILES = {"min": 0.0, "p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
QUANTILES_MAX = "max"


@dataclass(slots=True)
class DatasetStats:
    """Statistics of one dataset; plain numbers, keyed by name.

    Attributes:
        name: The dataset's name.
        images: Number of images.
        annotations: Number of boxes.
        classes: Classes in the tables: the dataset's declared classes and the
            ones that occur, in taxonomy order, then names outside the taxonomy.
        splits: Splits that occur, in ``train, val, test`` order, then
            ``unassigned`` for images without a split.
        subsets: The dataset's own subsets that occur, in order of first appearance.
        images_per_split: Images per split.
        clean_images_per_split: Clean bags (no box, and no object the reader
            left out: :func:`~cv.datasets.formats.common.is_clean`), per split.
        boxes_per_class: Boxes per class, then per split.
        images_per_class: Images that contain the class, per class then split.
        images_per_subset: Images per subset.
        clean_images_per_subset: Clean bags, per subset.
        boxes_per_class_subset: Boxes per class, then per subset.
        images_per_source: Images per ``ImageRecord.source`` (``""`` when unset).
        boxes_per_image: Number of images per number of boxes in an image.
        box_sizes: Boxes per class, then per size bucket (:data:`SIZE_BUCKETS`).
        box_dimensions: Quantiles (:data:`QUANTILES` and ``max``) of box width
            and height in pixels (``width_px``, ``height_px``) and relative to
            the image (``width_rel``, ``height_rel``); over valid boxes only.
        box_side_histogram: ``(low, high, count)`` of ``sqrt(w * h)`` in pixels,
            bins :data:`SIDE_EDGES`; over valid boxes only.
        occlusion: Boxes per class, then per occlusion level ``1``-``3`` or
            ``unknown`` (any other recorded level gets its own key).
        concealment: Boxes per class, then per concealment mode; empty when no
            annotation records one.
        image_sizes: Images per ``WxH`` size, most frequent first; images whose
            header cannot be read have no size and are left out.
        image_dimensions: Quantiles of image ``width`` and ``height``, over the
            images with a size.
        images_without_size: Images left out of the two above because the
            reader could not read their header.
        reader_traces: What the reader changed or left out, from the traces it
            keeps in ``ImageRecord.meta`` (see :mod:`cv.datasets.formats.common`):
            ``invalid_boxes_left_out``, ``objects_of_dropped_classes``,
            ``boxes_clipped``, ``objects_of_unknown_classes``,
            ``malformed_entries_left_out`` (an entry read for several images,
            such as a DvXray file for both views, once),
            ``images_with_unreadable_header``, ``objects_in_unreadable_images``
            (objects of known classes such an image could not hold),
            ``positive_images_without_boxes``; and ``orphan_entries_left_out``,
            the faults the reader found in no image (its ``source_problems``).
        unknown_classes: Per class name the class map does not know, most
            objects first: ``objects`` left out, and the place ``first_seen``
            (``file:line: field``, relative to the dataset root).
    """

    name: str
    images: int
    annotations: int
    classes: list[str]
    splits: list[str]
    subsets: list[str]
    images_per_split: dict[str, int]
    clean_images_per_split: dict[str, int]
    boxes_per_class: dict[str, dict[str, int]]
    images_per_class: dict[str, dict[str, int]]
    images_per_subset: dict[str, int]
    clean_images_per_subset: dict[str, int]
    boxes_per_class_subset: dict[str, dict[str, int]]
    images_per_source: dict[str, int]
    boxes_per_image: dict[int, int]
    box_sizes: dict[str, dict[str, int]]
    box_dimensions: dict[str, dict[str, float | None]]
    box_side_histogram: list[tuple[float, float, int]]
    occlusion: dict[str, dict[str, int]]
    concealment: dict[str, dict[str, int]] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)
    image_dimensions: dict[str, dict[str, float | None]] = field(default_factory=dict)
    images_without_size: int = 0
    reader_traces: dict[str, int] = field(default_factory=dict)
    unknown_classes: dict[str, dict[str, int | str]] = field(default_factory=dict)

    @property
    def clean_images(self) -> int:
        """Clean bags: images without any box or object left out."""
        return sum(self.clean_images_per_split.values())

    def total_boxes(self, cls: str) -> int:
        """Boxes of class ``cls`` over all splits."""
        return sum(self.boxes_per_class[cls].values())

    def size_totals(self) -> dict[str, int]:
        """Boxes per size bucket over all classes."""
        return {b: sum(s[b] for s in self.box_sizes.values()) for b in SIZE_BUCKETS}

    def to_dict(self) -> dict[str, object]:
        """The statistics as plain JSON types (``None`` where there is no value)."""
        return {
            "name": self.name,
            "images": self.images,
            "annotations": self.annotations,
            "clean_images": self.clean_images,
            "classes": self.classes,
            "splits": self.splits,
            "subsets": self.subsets,
            "images_per_split": self.images_per_split,
            "clean_images_per_split": self.clean_images_per_split,
            "boxes_per_class": self.boxes_per_class,
            "images_per_class": self.images_per_class,
            "images_per_subset": self.images_per_subset,
            "clean_images_per_subset": self.clean_images_per_subset,
            "boxes_per_class_subset": self.boxes_per_class_subset,
            "images_per_source": self.images_per_source,
            "boxes_per_image": {str(k): v for k, v in self.boxes_per_image.items()},
            "box_sizes": self.box_sizes,
            "box_size_totals": self.size_totals(),
            "box_dimensions": self.box_dimensions,
            "box_side_histogram": [
                {"low": lo, "high": None if math.isinf(hi) else hi, "count": n}
                for lo, hi, n in self.box_side_histogram
            ],
            "occlusion": self.occlusion,
            "concealment": self.concealment,
            "image_sizes": self.image_sizes,
            "image_dimensions": self.image_dimensions,
            "images_without_size": self.images_without_size,
            "reader_traces": self.reader_traces,
            "unknown_classes": self.unknown_classes,
        }

    def write_json(self, path: str | PathLike[str]) -> Path:
        """Writes :meth:`to_dict` as JSON (conventionally ``stats.json``); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p

    def write_markdown(self, path: str | PathLike[str]) -> Path:
        """Writes readable tables (conventionally ``stats.md``); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_markdown())
        return p

    def to_markdown(self, *, max_image_sizes: int = 20) -> str:
        """The text that :meth:`write_markdown` writes.

        Args:
            max_image_sizes: Rows of the image-size table; the rest are summed up
                in one line (the JSON lists them all).
        """
        out: list[str] = [f"# Dataset statistics: {self.name}", ""]
        mean = self.annotations / self.images if self.images else 0.0
        out += _md_table(
            ["Measure", "Value"],
            [
                ["Images", self.images],
                ["Boxes", self.annotations],
                ["Clean images (no object)", self.clean_images],
                ["Classes", len(self.classes)],
                ["Mean boxes per image", f"{mean:.2f}"],
                *(
                    [f"Reader: {k.replace('_', ' ')}", n]
                    for k, n in self.reader_traces.items()
                    if n
                ),
            ],
        )
        if self.unknown_classes:
            out += [
                "## Classes the class map does not know",
                "",
                "Their objects are left out of every count below; map the names to "
                "taxonomy classes (or to null to drop them) in a class-map YAML and "
                "pass it with `--class-map FILE`.",
                "",
            ]
            out += _md_table(
                ["Class name", "Objects", "First seen"],
                [
                    [name or "(empty)", u["objects"], u["first_seen"]]
                    for name, u in self.unknown_classes.items()
                ],
            )
        out += ["## Splits", ""]
        out += _md_table(
            ["Split", "Images", "Clean images", "Boxes"],
            [
                [
                    s,
                    self.images_per_split[s],
                    self.clean_images_per_split[s],
                    sum(c[s] for c in self.boxes_per_class.values()),
                ]
                for s in self.splits
            ],
        )
        out += ["## Boxes per class and split", ""]
        out += _md_table(
            ["Class", *self.splits, "Total", "Images with it"],
            [
                [
                    c,
                    *(self.boxes_per_class[c][s] for s in self.splits),
                    self.total_boxes(c),
                    sum(self.images_per_class[c].values()),
                ]
                for c in self.classes
            ],
        )
        if self.subsets:
            out += ["## Subsets", ""]
            out += _md_table(
                ["Subset", "Images", "Clean images", "Boxes"],
                [
                    [
                        s,
                        self.images_per_subset[s],
                        self.clean_images_per_subset[s],
                        sum(c[s] for c in self.boxes_per_class_subset.values()),
                    ]
                    for s in self.subsets
                ],
            )
            out += ["### Boxes per class and subset", ""]
            out += _md_table(
                ["Class", *self.subsets],
                [
                    [c, *(self.boxes_per_class_subset[c][s] for s in self.subsets)]
                    for c in self.classes
                ],
            )
        if len(self.images_per_source) > 1:
            out += ["## Sources", ""]
            out += _md_table(
                ["Source", "Images"],
                [[s or "(unset)", n] for s, n in self.images_per_source.items()],
            )
        out += [
            "## Box sizes",
            "",
            f"COCO buckets on the box area: small < 32² ({SMALL_AREA}), "
            f"medium < 96² ({MEDIUM_AREA}), large >= 96²; invalid boxes have no "
            "finite positive width and height.",
            "",
        ]
        totals = self.size_totals()
        out += _md_table(
            ["Class", *SIZE_BUCKETS],
            [[c, *(self.box_sizes[c][b] for b in SIZE_BUCKETS)] for c in self.classes]
            + [["**all**", *(totals[b] for b in SIZE_BUCKETS)]],
        )
        out += ["### Box width and height", ""]
        keys = [*QUANTILES, QUANTILES_MAX]
        labels = {
            "width_px": "width (px)",
            "height_px": "height (px)",
            "width_rel": "width / image width",
            "height_rel": "height / image height",
        }
        out += _md_table(
            ["Measure", *keys],
            [[labels[m], *(_fmt(self.box_dimensions[m][k]) for k in keys)] for m in labels],
        )
        out += ["### Box side sqrt(w·h) histogram (px)", ""]
        out += _md_table(
            ["From", "Below", "Boxes"],
            [
                [f"{lo:g}", "∞" if math.isinf(hi) else f"{hi:g}", n]
                for lo, hi, n in self.box_side_histogram
            ],
        )
        out += ["## Occlusion levels", ""]
        occ_keys = _occlusion_keys(self.occlusion)
        out += _md_table(
            ["Class", *(f"OL{k}" if k.isdigit() else k for k in occ_keys)],
            [[c, *(self.occlusion[c].get(k, 0) for k in occ_keys)] for c in self.classes],
        )
        if self.concealment:
            modes = _concealment_keys(self.concealment)
            out += ["## Concealment modes", ""]
            out += _md_table(
                ["Class", *modes],
                [
                    [c, *(self.concealment.get(c, {}).get(m, 0) for m in modes)]
                    for c in self.classes
                ],
            )
        out += ["## Boxes per image", ""]
        out += _md_table(["Boxes", "Images"], [[k, v] for k, v in self.boxes_per_image.items()])
        out += ["## Image sizes", ""]
        sizes = list(self.image_sizes.items())
        rows: list[list[object]] = [[s, n] for s, n in sizes[:max_image_sizes]]
        rest = sizes[max_image_sizes:]
        if rest:
            rows.append([f"{len(rest)} other sizes", sum(n for _, n in rest)])
        out += _md_table(["Width x height", "Images"], rows)
        out += _md_table(
            ["Measure", *keys],
            [[m, *(_fmt(self.image_dimensions[m][k]) for k in keys)] for m in ("width", "height")],
        )
        if self.images_without_size:
            out += [
                f"{self.images_without_size} images whose header cannot be read have no "
                "size and are left out of the two tables above.",
                "",
            ]
        return "\n".join(out)

    def plot(self, path: str | PathLike[str], *, dpi: int = 100) -> Path:
        """Writes one PNG with four panels: boxes per class by split, box-side
        histogram, occlusion levels per class, boxes per image; returns the path.
        """
        # Lazy: matplotlib is slow to import and only this method needs it. The
        # Figure is drawn on its own Agg canvas, so pyplot's global state is untouched.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        n_classes = max(1, len(self.classes))
        fig = Figure(figsize=(14, max(8.0, 4.0 + 0.5 * n_classes)), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2)
        fig.suptitle(f"{self.name}: {self.images} images, {self.annotations} boxes")
        y = np.arange(len(self.classes))

        ax = axes[0, 0]
        height = 0.8 / max(1, len(self.splits))
        for j, s in enumerate(self.splits):
            ax.barh(
                y + (j - (len(self.splits) - 1) / 2) * height,
                [self.boxes_per_class[c][s] for c in self.classes],
                height=height,
                label=s,
            )
        ax.set_yticks(y, self.classes)
        ax.invert_yaxis()
        ax.set_xlabel("boxes")
        ax.set_title("Boxes per class and split")
        if self.splits:
            ax.legend(loc="best", fontsize="small")

        ax = axes[0, 1]
        edges = [lo for lo, _, _ in self.box_side_histogram]
        counts = [n for _, _, n in self.box_side_histogram]
        labels = [f"{lo:g}" for lo in edges]
        ax.bar(np.arange(len(counts)), counts, width=0.9, align="edge")
        ax.set_xticks(np.arange(len(counts)), labels, rotation=45)
        for boundary in (32, 96):
            ax.axvline(edges.index(boundary), color="red", linestyle="--", linewidth=1)
        ax.set_xlabel("box side sqrt(w·h), px (bin start; dashed: COCO 32 and 96)")
        ax.set_ylabel("boxes")
        ax.set_title("Box sizes")

        ax = axes[1, 0]
        left = np.zeros(len(self.classes))
        for k in _occlusion_keys(self.occlusion):
            values = np.array([self.occlusion[c].get(k, 0) for c in self.classes], dtype=float)
            colour = "lightgrey" if k == "unknown" else None
            ax.barh(y, values, left=left, label=f"OL{k}" if k.isdigit() else k, color=colour)
            left += values
        ax.set_yticks(y, self.classes)
        ax.invert_yaxis()
        ax.set_xlabel("boxes")
        ax.set_title("Occlusion levels per class")
        ax.legend(loc="best", fontsize="small")

        ax = axes[1, 1]
        ax.bar(list(self.boxes_per_image), list(self.boxes_per_image.values()))
        ax.set_xlabel("boxes in the image")
        ax.set_ylabel("images")
        ax.set_title("Boxes per image")

        # Every axis here counts boxes or images: integer ticks only.
        for ax, axis in (
            (axes[0, 0], "x"),
            (axes[0, 1], "y"),
            (axes[1, 0], "x"),
            (axes[1, 1], "x"),
            (axes[1, 1], "y"),
        ):
            getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))
        fig.savefig(p, dpi=dpi)
        return p


_TRACE_KEYS = {
    "invalid": "invalid_boxes_left_out",
    "dropped": "objects_of_dropped_classes",
    "clipped": "boxes_clipped",
    "unknown": "objects_of_unknown_classes",
    "malformed": "malformed_entries_left_out",
    "unreadable": "images_with_unreadable_header",
    "unplaced": "objects_in_unreadable_images",
    "missing_boxes": "positive_images_without_boxes",
}
"""``ImageRecord.meta`` keys of the readers' traces, and their names in the stats."""


def _occlusion_keys(occlusion: dict[str, dict[str, int]]) -> list[str]:
    extra = sorted({k for per in occlusion.values() for k in per} - set(OCCLUSION_KEYS))
    return [*OCCLUSION_KEYS, *extra]


def _concealment_keys(concealment: dict[str, dict[str, int]]) -> list[str]:
    present = {k for per in concealment.values() for k in per}
    known = [m for m in CONCEALMENT_MODES if m in present]
    return known + sorted(present - set(known))


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _md_table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for row in rows:
        cells = [str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _quantiles(values: NDArray[np.float64]) -> dict[str, float | None]:
    keys = [*QUANTILES, QUANTILES_MAX]
    if values.size == 0:
        return dict.fromkeys(keys)
    qs = np.quantile(values, [*QUANTILES.values(), 1.0])
    return {k: float(v) for k, v in zip(keys, qs, strict=True)}


def dataset_stats(
    dataset: Dataset, *, source_problems: Sequence[Mapping[str, object]] = ()
) -> DatasetStats:
    """Counts and distributions of a dataset, from its records alone.

    Args:
        dataset: The dataset; its images are not read.
        source_problems: What the reader listed as belonging to no image (its
            ``source_problems`` list), counted as ``orphan_entries_left_out``.

    Returns:
        The statistics.
    """
    records = dataset.images
    n_images = len(records)

    # One pass over the records collects small integer codes; numpy counts them.
    split_names: list[str] = []
    split_index: dict[str | None, int] = {}
    subset_index: dict[str, int] = {}
    class_index: dict[str, int] = {}
    occ_index: dict[str, int] = {k: i for i, k in enumerate(OCCLUSION_KEYS)}
    conc_index: dict[str, int] = {}
    source_counts: Counter[str] = Counter()
    traces: Counter[str] = Counter()
    unknown_count: Counter[str] = Counter()
    unknown_first: dict[str, str] = {}
    size_counts: Counter[tuple[int, int]] = Counter()
    malformed: set[object] = set()

    img_split = np.empty(n_images, dtype=np.int64)
    img_subset = np.full(n_images, -1, dtype=np.int64)
    img_count = np.empty(n_images, dtype=np.int64)
    img_clean = np.empty(n_images, dtype=bool)
    img_sized = np.ones(n_images, dtype=bool)
    img_w = np.empty(n_images, dtype=np.float64)
    img_h = np.empty(n_images, dtype=np.float64)
    ann_image: list[int] = []
    ann_class: list[int] = []
    ann_occ: list[int] = []
    ann_conc: list[int] = []
    ann_box: list[tuple[float, float, float, float]] = []

    for i, rec in enumerate(records):
        s = split_index.get(rec.split)
        if s is None:
            s = split_index[rec.split] = len(split_names)
            split_names.append(NO_SPLIT if rec.split is None else str(rec.split))
        img_split[i] = s
        if rec.subset is not None:
            img_subset[i] = subset_index.setdefault(rec.subset, len(subset_index))
        img_count[i] = len(rec.annotations)
        img_clean[i] = is_clean(rec)
        img_w[i] = rec.width
        img_h[i] = rec.height
        source_counts[rec.source] += 1
        if rec.meta and rec.meta.get("unreadable"):
            img_sized[i] = False  # no size: 0 x 0 would skew the sizes
        else:
            size_counts[(rec.width, rec.height)] += 1
        if rec.meta:
            for key, name in _TRACE_KEYS.items():
                value = rec.meta.get(key)
                if key == "malformed" and isinstance(value, list | tuple):
                    malformed.update(map(trace_key, value))
                elif isinstance(value, list | tuple):
                    traces[name] += len(value)
            for item in rec.meta.get("unknown", ()):  # type: ignore[attr-defined]
                unknown_count[item["name"]] += 1
                unknown_first.setdefault(item["name"], trace_place(item, dataset.root))
        for a in rec.annotations:
            ann_image.append(i)
            ann_class.append(class_index.setdefault(a.category, len(class_index)))
            if a.occlusion_level is not None:
                level = str(a.occlusion_level)
            elif a.occlusion is not None:
                level = str(occlusion_level(a.occlusion))
            else:
                level = "unknown"
            ann_occ.append(occ_index.setdefault(level, len(occ_index)))
            ann_conc.append(
                -1
                if a.concealment is None
                else conc_index.setdefault(a.concealment, len(conc_index))
            )
            ann_box.append(a.box)

    # Table order: declared and used taxonomy classes in taxonomy order, then the rest.
    names = set(class_index) | set(dataset.classes)
    classes = [c for c in NAMES if c in names] + sorted(names - set(NAMES))
    for c in classes:
        class_index.setdefault(c, len(class_index))
    k_cls = len(class_index)

    split_rank = {name: r for r, name in enumerate((*SPLITS, NO_SPLIT))}
    splits = sorted(split_names, key=lambda n: (split_rank.get(n, len(split_rank)), n))
    subsets = list(subset_index)
    k_split, k_sub = len(split_names), len(subsets)

    a_img = np.asarray(ann_image, dtype=np.int64)
    a_cls = np.asarray(ann_class, dtype=np.int64)
    a_occ = np.asarray(ann_occ, dtype=np.int64)
    a_conc = np.asarray(ann_conc, dtype=np.int64)
    a_split = img_split[a_img]

    def per_class(
        codes: NDArray[np.int64], n: int, mask: NDArray[np.bool_] | None = None
    ) -> NDArray[np.int64]:
        """A (classes, n) table counting each annotation's class and code."""
        sel = slice(None) if mask is None else mask
        flat = a_cls[sel] * n + codes[sel]
        return np.bincount(flat, minlength=k_cls * n).reshape(k_cls, n)

    def by_name(
        table: NDArray[np.int64], keys: list[str], index: dict[str, int]
    ) -> dict[str, dict[str, int]]:
        """A per-class table as ``{class: {key: count}}`` in table order."""
        return {c: {k: int(table[class_index[c], index[k]]) for k in keys} for c in classes}

    split_pos = {name: j for j, name in enumerate(split_names)}
    boxes_cs = per_class(a_split, k_split)
    # An image counts once per class it contains: unique (image, class) pairs.
    pairs = np.unique(a_img * k_cls + a_cls)
    pair_img, pair_cls = pairs // k_cls, pairs % k_cls
    images_cs = np.bincount(
        pair_cls * k_split + img_split[pair_img], minlength=k_cls * k_split
    ).reshape(k_cls, k_split)

    clean = img_clean
    images_per_split = np.bincount(img_split, minlength=k_split)
    clean_per_split = np.bincount(img_split[clean], minlength=k_split)

    has_sub = img_subset >= 0
    images_per_subset = np.bincount(img_subset[has_sub], minlength=k_sub)
    clean_per_subset = np.bincount(img_subset[has_sub & clean], minlength=k_sub)
    a_sub = img_subset[a_img]
    boxes_csub = per_class(a_sub, max(k_sub, 1), a_sub >= 0)

    # Box geometry, vectorised over all boxes.
    boxes = np.asarray(ann_box, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore", over="ignore"):
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        valid = np.isfinite(boxes).all(axis=1) & (w > 0) & (h > 0)
        area = w * h
    bucket = np.full(len(boxes), 3, dtype=np.int64)  # 3: invalid
    bucket[valid] = np.where(area[valid] < SMALL_AREA, 0, np.where(area[valid] < MEDIUM_AREA, 1, 2))
    sizes_cb = per_class(bucket, len(SIZE_BUCKETS))

    bw, bh = w[valid], h[valid]
    iw, ih = img_w[a_img][valid], img_h[a_img][valid]
    rel_ok = (iw > 0) & (ih > 0)
    side_counts, _ = np.histogram(np.sqrt(area[valid]), bins=np.asarray(SIDE_EDGES, dtype=float))
    histogram = [
        (float(lo), float(hi), int(n))
        for lo, hi, n in zip(SIDE_EDGES[:-1], SIDE_EDGES[1:], side_counts, strict=True)
    ]

    # The four standard keys always, and any other level that was recorded.
    occ_keys = list(occ_index)
    occ_cl = per_class(a_occ, len(occ_keys))

    conc_names = list(conc_index)
    concealment: dict[str, dict[str, int]] = {}
    if conc_names:
        conc_cl = per_class(a_conc, len(conc_names), a_conc >= 0)
        concealment = by_name(conc_cl, conc_names, conc_index)

    per_image = Counter(img_count.tolist())
    image_sizes = {
        f"{wd}x{ht}": n
        for (wd, ht), n in sorted(size_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    }

    return DatasetStats(
        name=dataset.name,
        images=n_images,
        annotations=len(ann_box),
        classes=classes,
        splits=splits,
        subsets=subsets,
        images_per_split={s: int(images_per_split[split_pos[s]]) for s in splits},
        clean_images_per_split={s: int(clean_per_split[split_pos[s]]) for s in splits},
        boxes_per_class=by_name(boxes_cs, splits, split_pos),
        images_per_class=by_name(images_cs, splits, split_pos),
        images_per_subset={s: int(images_per_subset[subset_index[s]]) for s in subsets},
        clean_images_per_subset={s: int(clean_per_subset[subset_index[s]]) for s in subsets},
        boxes_per_class_subset=by_name(boxes_csub, subsets, subset_index),
        images_per_source=dict(source_counts.most_common()),
        boxes_per_image=dict(sorted(per_image.items())),
        box_sizes=by_name(sizes_cb, list(SIZE_BUCKETS), {b: j for j, b in enumerate(SIZE_BUCKETS)}),
        box_dimensions={
            "width_px": _quantiles(bw),
            "height_px": _quantiles(bh),
            "width_rel": _quantiles(bw[rel_ok] / iw[rel_ok]),
            "height_rel": _quantiles(bh[rel_ok] / ih[rel_ok]),
        },
        box_side_histogram=histogram,
        occlusion=by_name(occ_cl, occ_keys, occ_index),
        concealment=concealment,
        image_sizes=image_sizes,
        image_dimensions={
            "width": _quantiles(img_w[img_sized]),
            "height": _quantiles(img_h[img_sized]),
        },
        images_without_size=int(n_images - img_sized.sum()),
        reader_traces={
            **{name: traces[name] for name in _TRACE_KEYS.values()},
            "malformed_entries_left_out": len(malformed),
            "orphan_entries_left_out": len(source_problems),
        },
        unknown_classes={
            name: {"objects": n, "first_seen": unknown_first[name]}
            for name, n in sorted(unknown_count.items(), key=lambda kv: (-kv[1], kv[0]))
        },
    )


def render_tables(stats: DatasetStats) -> list[Table]:
    """The main statistics as rich tables for the terminal: splits, boxes per
    class and split, box sizes per class, occlusion levels per class, and the
    class names the class map does not know, if any.
    """
    from rich.table import Table

    splits = Table(title=f"{stats.name}: {stats.images} images, {stats.annotations} boxes")
    for col in ("Split", "Images", "Clean images", "Boxes"):
        splits.add_column(col, justify="left" if col == "Split" else "right")
    for s in stats.splits:
        boxes = sum(c[s] for c in stats.boxes_per_class.values())
        splits.add_row(
            s, str(stats.images_per_split[s]), str(stats.clean_images_per_split[s]), str(boxes)
        )
    splits.add_row("[bold]all", str(stats.images), str(stats.clean_images), str(stats.annotations))

    per_class = Table(title="Boxes per class and split")
    per_class.add_column("Class")
    for s in [*stats.splits, "Total", "Images with it"]:
        per_class.add_column(s, justify="right")
    for c in stats.classes:
        per_class.add_row(
            c,
            *(str(stats.boxes_per_class[c][s]) for s in stats.splits),
            str(stats.total_boxes(c)),
            str(sum(stats.images_per_class[c].values())),
        )

    sizes = Table(title="Box sizes (COCO: small < 32², medium < 96², large)")
    sizes.add_column("Class")
    for b in SIZE_BUCKETS:
        sizes.add_column(b, justify="right")
    for c in stats.classes:
        sizes.add_row(c, *(str(stats.box_sizes[c][b]) for b in SIZE_BUCKETS))
    totals = stats.size_totals()
    sizes.add_row("[bold]all", *(str(totals[b]) for b in SIZE_BUCKETS))

    occlusion = Table(title="Occlusion levels")
    occlusion.add_column("Class")
    keys = _occlusion_keys(stats.occlusion)
    for k in keys:
        occlusion.add_column(f"OL{k}" if k.isdigit() else k, justify="right")
    for c in stats.classes:
        occlusion.add_row(c, *(str(stats.occlusion[c].get(k, 0)) for k in keys))
    if not stats.unknown_classes:
        return [splits, per_class, sizes, occlusion]
    unknown = Table(title="Classes the class map does not know (objects left out)")
    unknown.add_column("Class name")
    unknown.add_column("Objects", justify="right")
    unknown.add_column("First seen", overflow="fold")
    for name, u in stats.unknown_classes.items():
        unknown.add_row(name or "(empty)", str(u["objects"]), str(u["first_seen"]))
    return [splits, per_class, sizes, occlusion, unknown]
