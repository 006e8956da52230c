"""Dataset validation: every fault in a :class:`~cv.records.Dataset`, before anyone trains on it.

:func:`check_dataset` decodes every image (in a process pool, since decoding is
the slow part) and checks every record and annotation against the rules in
:data:`RULES`. Each fault becomes a :class:`Finding` naming the image file, the
annotation index where it applies, a code and a message; nothing is skipped,
so the :class:`CheckReport` lists everything. What a reader already left out
or changed (the traces that :mod:`cv.datasets.formats.common` keeps in
``ImageRecord.meta``: invalid boxes, classes the class map drops, clipped boxes,
and, for a dataset read with ``problems="record"``, class names the class map
does not know, annotation entries that cannot be parsed, image headers that
cannot be read and positive images without boxes) is reported too, and so are
the faults a reader listed in ``source_problems`` because they belong to no image
(an entry naming an image that does not exist, a file that cannot be parsed).
Findings come in that order: the source's first, then image by image (the
image's own findings before its annotations'), whatever the number of workers.

:func:`clean_dataset` returns the dataset without what has errors, for users who
choose to train on the clean part, together with the exact list of what it left
out.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import operator
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from cv.datasets.formats.common import relative_file, trace_place
from cv.errors import (
    ConfigError,
    DataValidationError,
    ImageReadError,
    NotFoundError,
)
from cv.image import read_image
from cv.log import progress as progress_bar
from cv.records import Dataset, ImageRecord
from cv.taxonomy import NAMES, is_category

if TYPE_CHECKING:
    from rich.table import Table

Severity = Literal["error", "warning"]
Scope = Literal["source", "image", "annotation"]

DEFAULT_TOLERANCE = 1.0
"""Pixels a box may reach beyond the image before it counts as outside.

Converters round and clip, and 1-based formats put a box edge one pixel past
the border; a pixel of slack keeps those from drowning the real faults.
"""


@dataclass(frozen=True, slots=True)
class Rule:
    """What one finding code means.

    Attributes:
        severity: ``error`` (the item must not be trained on) or ``warning``.
        scope: Whether the code is about the dataset's ``source`` files (a fault
            that belongs to no image), a whole ``image`` or one ``annotation``.
        description: One line for the report's summary table.
    """

    severity: Severity
    scope: Scope
    description: str


RULES: dict[str, Rule] = {
    "orphan_in_source": Rule(
        "error",
        "source",
        "An annotation entry names an image that does not exist, or a file cannot be "
        "parsed at all: the reader left out what it holds.",
    ),
    "missing_image": Rule("error", "image", "The image file does not exist."),
    "unreadable_image": Rule("error", "image", "The image cannot be decoded, or is truncated."),
    "invalid_size": Rule("error", "image", "The recorded width or height is not positive."),
    "size_mismatch": Rule(
        "error", "image", "The recorded width/height differ from the decoded image's."
    ),
    "duplicate_image": Rule(
        "error", "image", "Same decoded pixels as an earlier image of the dataset."
    ),
    "invalid_box_in_source": Rule(
        "error",
        "image",
        "The reader left out an empty, inverted or outside box: its object is unlabelled.",
    ),
    "unknown_class_in_source": Rule(
        "error",
        "image",
        "The class map does not know this class name: the reader left its object out, unlabelled.",
    ),
    "malformed_in_source": Rule(
        "error",
        "image",
        "An annotation line or entry cannot be parsed: the reader left it out.",
    ),
    "boxes_missing_in_source": Rule(
        "error",
        "image",
        "The image-level labels mark the image positive, but the source has no boxes "
        "for it: its objects are unlabelled.",
    ),
    "class_dropped": Rule(
        "warning", "image", "The class map drops this class: its object is unlabelled."
    ),
    "malformed_box": Rule("error", "annotation", "The box is not four numbers."),
    "non_finite_box": Rule("error", "annotation", "A box coordinate is NaN or infinite."),
    "inverted_box": Rule("error", "annotation", "The box has x2 < x1 or y2 < y1."),
    "empty_box": Rule("error", "annotation", "The box has zero width or height."),
    "box_outside_image": Rule(
        "error", "annotation", "The box reaches beyond the image by more than the tolerance."
    ),
    "unknown_class": Rule("error", "annotation", "The class is not a taxonomy class name."),
    "unexpected_class": Rule(
        "error", "annotation", "The class is not among the classes the dataset is checked against."
    ),
    "box_clipped": Rule(
        "warning", "annotation", "The box reached past the image in the source; it was clipped."
    ),
    "duplicate_annotation": Rule(
        "warning", "annotation", "The image lists the same box with the same class twice."
    ),
}
"""Every finding code, in the order the reports list them."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One fault found in a dataset.

    Attributes:
        code: Key of :data:`RULES`.
        severity: ``error`` or ``warning`` (the code's).
        file: The image's ``ImageRecord.file``, as the dataset records it; for a
            finding about the source, the annotation file (relative to the root).
        image_index: Position of the image in ``Dataset.images``, or ``None`` for
            a finding about the source.
        annotation_index: Position of the annotation in the image's list, or
            ``None`` when the finding is about the whole image or the source.
        message: What exactly is wrong, with the values at fault.
    """

    code: str
    severity: Severity
    file: str
    image_index: int | None
    annotation_index: int | None
    message: str

    def to_dict(self) -> dict[str, object]:
        """The finding as plain JSON types."""
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "image_index": self.image_index,
            "annotation_index": self.annotation_index,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LeftOut:
    """One image or annotation that :func:`clean_dataset` left out.

    Attributes:
        file: The image's ``ImageRecord.file``.
        image_index: Position of the image in the checked dataset.
        annotation_index: The annotation left out, or ``None`` when the whole
            image was left out.
        codes: The error codes that caused it, in :data:`RULES` order.
    """

    file: str
    image_index: int
    annotation_index: int | None
    codes: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """The entry as plain JSON types."""
        return {
            "file": self.file,
            "image_index": self.image_index,
            "annotation_index": self.annotation_index,
            "codes": list(self.codes),
        }


@dataclass(slots=True)
class CheckReport:
    """The outcome of :func:`check_dataset`.

    Attributes:
        dataset: The dataset's name.
        root: The dataset's image root, when it has one.
        images: Number of images checked.
        annotations: Number of annotations checked.
        findings: Every finding, in dataset order.
        classes: The class list annotations were checked against, if any
            besides the taxonomy.
        tolerance: Pixels a box could reach beyond the image unreported.
    """

    dataset: str
    root: str | None
    images: int
    annotations: int
    findings: list[Finding]
    classes: list[str] | None = None
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of severity ``warning``."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """Whether the dataset has no errors (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    def counts(self) -> dict[str, int]:
        """Number of findings per code, for the codes that occur, in :data:`RULES` order."""
        tally = dict.fromkeys(RULES, 0)
        for f in self.findings:
            tally[f.code] += 1
        return {code: n for code, n in tally.items() if n}

    def to_dict(self, *, left_out: Sequence[LeftOut] | None = None) -> dict[str, object]:
        """The report as plain JSON types.

        Args:
            left_out: What :func:`clean_dataset` left out, to list beside the findings.
        """
        out: dict[str, object] = {
            "dataset": self.dataset,
            "root": self.root,
            "images": self.images,
            "annotations": self.annotations,
            "classes": self.classes,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }
        if left_out is not None:
            out["left_out"] = [x.to_dict() for x in left_out]
        return out

    def write_json(
        self, path: str | PathLike[str], *, left_out: Sequence[LeftOut] | None = None
    ) -> Path:
        """Writes the report as JSON (conventionally ``report.json``); returns the path.

        Args:
            path: Target file; parent directories are created.
            left_out: What :func:`clean_dataset` left out, if it was run.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(left_out=left_out), indent=1) + "\n")
        return p

    def write_markdown(
        self, path: str | PathLike[str], *, left_out: Sequence[LeftOut] | None = None
    ) -> Path:
        """Writes the report as Markdown (conventionally ``report.md``); returns the path.

        A summary table by code comes first, then every finding, then what
        :func:`clean_dataset` left out when given.

        Args:
            path: Target file; parent directories are created.
            left_out: What :func:`clean_dataset` left out, if it was run.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_markdown(left_out=left_out))
        return p

    def to_markdown(self, *, left_out: Sequence[LeftOut] | None = None) -> str:
        """The text that :meth:`write_markdown` writes."""
        verdict = "no errors" if self.ok else f"**{len(self.errors)} errors**"
        lines = [
            f"# Dataset check: {_md(self.dataset)}",
            "",
            f"- Root: `{self.root}`" if self.root else "- Root: (none)",
            f"- Images: {self.images}",
            f"- Annotations: {self.annotations}",
            f"- Result: {verdict}, {len(self.warnings)} warnings",
            f"- Box tolerance: {self.tolerance:g} px",
        ]
        if self.classes is not None:
            lines.append(f"- Classes checked against: {', '.join(self.classes)}")
        lines += ["", "## Summary", ""]
        counts = self.counts()
        if counts:
            lines += ["| Code | Severity | Count | Meaning |", "|---|---|---:|---|"]
            for code, n in counts.items():
                rule = RULES[code]
                lines.append(f"| `{code}` | {rule.severity} | {n} | {rule.description} |")
        else:
            lines.append("No findings.")
        if self.findings:
            lines += [
                "",
                "## Findings",
                "",
                "| Image # | File | Annotation | Severity | Code | Message |",
                "|---:|---|---:|---|---|---|",
            ]
            for f in self.findings:
                image = "" if f.image_index is None else str(f.image_index)
                ann = "" if f.annotation_index is None else str(f.annotation_index)
                lines.append(
                    f"| {image} | `{_md(f.file)}` | {ann} | {f.severity} | "
                    f"`{f.code}` | {_md(f.message)} |"
                )
        if left_out is not None:
            lines += ["", "## Left out of the cleaned dataset", ""]
            if left_out:
                images = sum(1 for x in left_out if x.annotation_index is None)
                lines += [
                    f"{images} whole images and {len(left_out) - images} single annotations.",
                    "",
                    "| Image # | File | Annotation | Because of |",
                    "|---:|---|---|---|",
                ]
                for x in left_out:
                    what = "whole image" if x.annotation_index is None else str(x.annotation_index)
                    codes = ", ".join(f"`{c}`" for c in x.codes)
                    lines.append(f"| {x.image_index} | `{_md(x.file)}` | {what} | {codes} |")
            else:
                lines.append("Nothing: the dataset has no errors.")
        return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Escapes what would break a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


class _Decoded(NamedTuple):
    """What a worker learnt from one image file (small, so it pickles fast)."""

    code: str | None
    message: str
    width: int
    height: int
    digest: bytes


def _decode(path: str) -> _Decoded:
    """Decodes one image as training will read it; hashes its pixels."""
    try:
        pixels = read_image(path)
    except NotFoundError as exc:
        return _Decoded("missing_image", exc.reason, 0, 0, b"")
    except ImageReadError as exc:
        return _Decoded("unreadable_image", exc.reason, 0, 0, b"")
    except OSError as exc:  # permissions, I/O errors: the file exists but cannot be read
        return _Decoded("unreadable_image", f"cannot read the file ({exc})", 0, 0, b"")
    height, width = pixels.shape[:2]
    digest = hashlib.blake2b(digest_size=16)
    # The shape goes into the hash so that equal bytes in different shapes differ.
    digest.update(repr(pixels.shape).encode())
    digest.update(memoryview(np.ascontiguousarray(pixels)).cast("B"))
    return _Decoded(None, "", width, height, digest.digest())


@contextmanager
def _decoded_in_order(paths: list[str], workers: int) -> Iterator[Iterator[_Decoded]]:
    """Yields an iterator of decode results in the order of ``paths``."""
    if workers <= 1 or len(paths) < 2:
        yield map(_decode, paths)
        return
    # `spawn` behaves the same on every OS and does not copy the parent's threads
    # (the progress bar's refresh thread) into the workers.
    ctx = multiprocessing.get_context("spawn")
    chunksize = max(1, min(64, len(paths) // (workers * 8)))
    with ctx.Pool(processes=min(workers, len(paths))) as pool:
        # imap keeps the input order, so findings do not depend on the worker count;
        # leaving the block (strict mode's first error) terminates the pool.
        yield pool.imap(_decode, paths, chunksize)


def _image_findings(
    record: ImageRecord,
    index: int,
    decoded: _Decoded,
    first_by_digest: dict[bytes, int],
    records: list[ImageRecord],
    root: Path | None = None,
) -> list[Finding]:
    """Findings about the whole image: file, size and duplicate pixels."""
    out: list[Finding] = []

    def add(code: str, message: str) -> None:
        out.append(Finding(code, RULES[code].severity, record.file, index, None, message))

    unreadable = _trace(record, "unreadable")
    if decoded.code is not None:
        add(decoded.code, decoded.message)
    elif unreadable:
        # The pixels decode, but not the header that the reader (and training) reads.
        add("unreadable_image", f"the reader cannot read its header: {unreadable[0]}")
    # A reader that cannot read the header records no size: there is none to check.
    if not unreadable and not _positive_size(record):
        add("invalid_size", f"recorded size is {record.width}x{record.height}")
    if decoded.code is None:
        if not unreadable and (record.width, record.height) != (decoded.width, decoded.height):
            add(
                "size_mismatch",
                f"recorded {record.width}x{record.height}, "
                f"decoded {decoded.width}x{decoded.height}",
            )
        first = first_by_digest.setdefault(decoded.digest, index)
        if first != index:
            other = records[first]
            if other.file == record.file:
                text = f"lists the same file as image #{first}"
            else:
                text = f"same pixels as image #{first} '{other.file}'"
            if other.split != record.split:
                text += f" (splits {other.split} and {record.split}: leaks between splits)"
            add("duplicate_image", text)
    # What the reader left out, from the traces it keeps in `meta`
    # (see cv.datasets.formats.common): reported so that nothing goes unseen.
    for item in _trace(record, "invalid"):
        if isinstance(item, dict):
            box = item.get("box")
            shown = "(" + ", ".join(f"{v:g}" for v in box) + ")" if _numbers(box) else repr(box)
            text = f"{item.get('reason', 'invalid box')}: {item.get('name', '')!r} xyxy {shown}"
        else:
            text = f"invalid box {item!r}"
        add("invalid_box_in_source", text)
    for item in _trace(record, "unknown"):
        if isinstance(item, dict):
            name = item.get("name")
            what = (
                "empty class name"
                if isinstance(name, str) and not name.strip()
                else f"unknown class {name!r}"
            )
            add("unknown_class_in_source", f"{trace_place(item, root)}: {what}")
        else:
            add("unknown_class_in_source", f"unknown class {item!r}")
    for trace, code, default, bare in (
        ("malformed", "malformed_in_source", "cannot be parsed", "malformed entry {!r}"),
        (
            "missing_boxes",
            "boxes_missing_in_source",
            "positive, but no boxes",
            "positive, but no boxes: {!r}",
        ),
    ):
        for item in _trace(record, trace):
            if isinstance(item, dict):
                add(code, f"{trace_place(item, root)}: {item.get('reason', default)}")
            else:  # a trace that names no place
                add(code, bare.format(item))
    for name in _trace(record, "dropped"):
        add("class_dropped", f"class {name!r} is mapped to nothing")
    return out


def _trace(record: ImageRecord, key: str) -> list[object]:
    """A reader's trace list in ``record.meta`` (empty when there is none)."""
    value = record.meta.get(key) if isinstance(record.meta, dict) else None
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _numbers(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value)


def _positive_size(record: ImageRecord) -> bool:
    """Whether the recorded size is two positive integers (NumPy integers included)."""
    try:
        return operator.index(record.width) > 0 and operator.index(record.height) > 0
    except TypeError:
        return False


def _annotation_findings(
    record: ImageRecord,
    index: int,
    allowed: frozenset[str] | None,
    allowed_from: str,
    tolerance: float,
) -> list[Finding]:
    """Findings about each annotation of one image, in annotation order."""
    out: list[Finding] = []
    seen: dict[tuple[str, tuple[float, ...]], int] = {}
    size_known = _positive_size(record)
    clipped = {k for k in _trace(record, "clipped") if isinstance(k, int)}
    for k, ann in enumerate(record.annotations):

        def add(code: str, message: str, k: int = k) -> None:
            out.append(Finding(code, RULES[code].severity, record.file, index, k, message))

        if not is_category(ann.category):
            original = f" (original name {ann.original_name!r})" if ann.original_name else ""
            add("unknown_class", f"class {ann.category!r} is not in the taxonomy{original}")
        elif allowed is not None and ann.category not in allowed:
            add("unexpected_class", f"class {ann.category!r} is not in {allowed_from}")

        try:
            x1, y1, x2, y2 = (float(v) for v in ann.box)
        except (TypeError, ValueError):
            add("malformed_box", f"box {ann.box!r} is not four numbers")
            continue
        box = (x1, y1, x2, y2)
        shown = "(" + ", ".join(f"{v:g}" for v in box) + ")"
        if not all(math.isfinite(v) for v in box):
            add("non_finite_box", f"box {shown} has a non-finite coordinate")
            continue
        if x2 < x1 or y2 < y1:
            add("inverted_box", f"box {shown} has x2 < x1 or y2 < y1")
        elif x2 == x1 or y2 == y1:
            add("empty_box", f"box {shown} has zero width or height")
        if size_known and (
            x1 < -tolerance
            or y1 < -tolerance
            or x2 > record.width + tolerance
            or y2 > record.height + tolerance
        ):
            add(
                "box_outside_image",
                f"box {shown} reaches beyond the {record.width}x{record.height} image "
                f"by more than {tolerance:g} px",
            )
        if k in clipped:
            add("box_clipped", f"box {shown} was clipped to the image by the reader")
        key = (ann.category, box)
        first = seen.setdefault(key, k)
        if first != k:
            add("duplicate_annotation", f"same box {shown} and class as annotation {first}")
    return out


def check_dataset(
    dataset: Dataset,
    *,
    strict: bool = False,
    classes: Sequence[str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    workers: int = 1,
    progress: bool | None = None,
    source_problems: Sequence[Mapping[str, object]] = (),
) -> CheckReport:
    """Checks every image and annotation of a dataset.

    Args:
        dataset: The dataset; relative image paths are resolved against its root.
        strict: Raise on the first error, in dataset order, instead of reporting.
        classes: Taxonomy names annotations must belong to. By default the
            dataset's own ``classes`` when it declares some, else any taxonomy name.
        tolerance: Pixels a box may reach beyond the image before it is reported.
        workers: Processes that decode images; 1 decodes in this process. The
            pool starts its workers with ``spawn``, so a script that calls this
            with several workers needs the usual ``if __name__ == "__main__"`` guard.
        progress: Show a progress bar; by default only when stderr is a terminal.
        source_problems: What the reader listed as belonging to no image (its
            ``source_problems`` list), reported first as ``orphan_in_source``.

    Returns:
        The report, with every finding in dataset order.

    Raises:
        ConfigError: If ``classes`` holds a name that is not in the taxonomy.
        DataValidationError: Under ``strict``, at the first error, naming the
            image file, the annotation and the reason.
    """
    if classes is not None:
        unknown = [c for c in classes if not is_category(c)]
        if unknown:
            raise ConfigError(
                f"not taxonomy class names: {', '.join(unknown)} (known: {', '.join(NAMES)})",
                field="classes",
            )
        allowed: frozenset[str] | None = frozenset(classes)
        allowed_from = "the classes given"
        checked_against: list[str] | None = list(classes)
    elif dataset.classes:
        allowed = frozenset(dataset.classes)
        allowed_from = "the dataset's classes"
        checked_against = list(dataset.classes)
    else:
        allowed, allowed_from, checked_against = None, "", None

    records = dataset.images
    paths = [str(dataset.image_path(r)) for r in records]
    findings = [_source_finding(item, dataset.root) for item in source_problems]
    if strict and findings:
        raise _as_error(findings[0], findings[0].file)
    first_by_digest: dict[bytes, int] = {}
    with (
        progress_bar(disable=None if progress is None else not progress) as bar,
        _decoded_in_order(paths, workers) as decoded_images,
    ):
        task = bar.add_task("checking images", total=len(records))
        for i, (record, decoded) in enumerate(zip(records, decoded_images, strict=True)):
            found = _image_findings(record, i, decoded, first_by_digest, records, dataset.root)
            found += _annotation_findings(record, i, allowed, allowed_from, tolerance)
            if strict:
                first_error = next((f for f in found if f.severity == "error"), None)
                if first_error is not None:
                    raise _as_error(first_error, paths[i])
            findings += found
            bar.advance(task)

    return CheckReport(
        dataset=dataset.name,
        root=None if dataset.root is None else str(dataset.root),
        images=len(records),
        annotations=sum(len(r.annotations) for r in records),
        findings=findings,
        classes=checked_against,
        tolerance=tolerance,
    )


def _source_finding(item: Mapping[str, object], root: Path | None) -> Finding:
    """The finding of a fault the reader found in no image (see :func:`check_dataset`)."""
    path = str(item.get("path"))
    file = path if root is None else relative_file(Path(path), root)
    message = f"{trace_place(item, root)}: {item.get('reason', 'cannot be read')}"
    return Finding(
        "orphan_in_source", RULES["orphan_in_source"].severity, file, None, None, message
    )


def _as_error(finding: Finding, path: str) -> DataValidationError:
    field = None if finding.annotation_index is None else f"annotations[{finding.annotation_index}]"
    return DataValidationError(f"{finding.code}: {finding.message}", path=path, field=field)


def clean_dataset(
    dataset: Dataset,
    report: CheckReport,
    *,
    drop: Literal["image", "annotation"] = "image",
) -> tuple[Dataset, list[LeftOut]]:
    """The dataset without what has errors, and the list of what was left out.

    Warnings leave nothing out. The input dataset is not changed.

    Args:
        dataset: The dataset that ``report`` was made from.
        report: Its check report.
        drop: ``image`` leaves out every image with any error. ``annotation``
            leaves out only the faulty annotations of an image whose file is
            sound; that keeps more data, but the object of a dropped box is then
            unlabelled in its image and teaches a detector that it is background.

    Returns:
        The cleaned dataset (same name, root and classes) and what was left
        out, in dataset order.

    Raises:
        ValueError: If ``report`` was not made from ``dataset``.
    """
    if drop not in ("image", "annotation"):
        raise ValueError(f"drop must be 'image' or 'annotation', got {drop!r}")
    if report.images != len(dataset.images):
        raise ValueError(
            f"the report covers {report.images} images, the dataset has {len(dataset.images)}"
        )
    bad_images: dict[int, list[str]] = {}
    bad_annotations: dict[int, dict[int, list[str]]] = {}
    for f in report.errors:
        if f.image_index is None:
            continue  # about the source: the reader already left it out
        if dataset.images[f.image_index].file != f.file:
            raise ValueError(
                f"the report's image #{f.image_index} is {f.file!r}, "
                f"the dataset's is {dataset.images[f.image_index].file!r}"
            )
        if f.annotation_index is None or drop == "image":
            bad_images.setdefault(f.image_index, []).append(f.code)
        else:
            per_image = bad_annotations.setdefault(f.image_index, {})
            per_image.setdefault(f.annotation_index, []).append(f.code)

    kept: list[ImageRecord] = []
    left_out: list[LeftOut] = []
    for i, record in enumerate(dataset.images):
        if i in bad_images:
            left_out.append(LeftOut(record.file, i, None, _ordered_codes(bad_images[i])))
            continue
        bad = bad_annotations.get(i)
        if not bad:
            kept.append(replace(record, annotations=list(record.annotations)))
            continue
        for k in sorted(bad):
            left_out.append(LeftOut(record.file, i, k, _ordered_codes(bad[k])))
        anns = [a for k, a in enumerate(record.annotations) if k not in bad]
        kept.append(replace(record, annotations=anns))
    cleaned = Dataset(
        name=dataset.name, images=kept, root=dataset.root, classes=list(dataset.classes)
    )
    return cleaned, left_out


def _ordered_codes(codes: list[str]) -> tuple[str, ...]:
    present = set(codes)
    return tuple(c for c in RULES if c in present)


def summary_table(report: CheckReport) -> Table:
    """A rich table of the findings per code, for the terminal."""
    from rich.table import Table

    table = Table(
        title=f"Check of {report.dataset}: {report.images} images, {report.annotations} annotations"
    )
    table.add_column("Code")
    table.add_column("Severity")
    table.add_column("Count", justify="right")
    table.add_column("Meaning")
    for code, n in report.counts().items():
        rule = RULES[code]
        colour = "red" if rule.severity == "error" else "yellow"
        table.add_row(code, f"[{colour}]{rule.severity}[/]", str(n), rule.description)
    if not report.findings:
        table.add_row("-", "[green]ok[/]", "0", "No findings.")
    return table


def findings_table(report: CheckReport, *, limit: int = 20) -> Table:
    """A rich table of the first ``limit`` findings, for the terminal."""
    from rich.table import Table

    shown = report.findings[:limit]
    more = len(report.findings) - len(shown)
    caption = f"... and {more} more (see the report)" if more > 0 else None
    table = Table(title="First findings", caption=caption)
    table.add_column("Image #", justify="right")
    table.add_column("File", overflow="fold")
    table.add_column("Ann.", justify="right")
    table.add_column("Code")
    table.add_column("Message", overflow="fold")
    for f in shown:
        image = "" if f.image_index is None else str(f.image_index)
        ann = "" if f.annotation_index is None else str(f.annotation_index)
        colour = "red" if f.severity == "error" else "yellow"
        table.add_row(image, f.file, ann, f"[{colour}]{f.code}[/]", f.message)
    return table
