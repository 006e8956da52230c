"""Person re-identification datasets: Market-1501 (and DukeMTMC-reID) and MSMT17.

A re-ID dataset is three lists of crops, each with a person id and a camera id:
``train`` (identities to learn from), ``query`` (crops to search with) and
``gallery`` (crops to search in; other identities than ``train``).

Market-1501 layout (``read_market1501``)::

    root/bounding_box_train/0002_c1s1_000451_03.jpg    pid 2, camera 1, frame 451
    root/bounding_box_test/...                          the gallery
    root/query/...
    root/gt_bbox/, gt_query/                            hand-drawn boxes, ignored

File names are ``pppp_cXsY_ffffff_bb.jpg``: person id, camera ``X``, sequence ``Y``,
frame, box index. Person id ``-1`` marks junk crops (to be dropped by the evaluation
protocol), ``0000`` distractors (kept in the gallery, they match no query).
DukeMTMC-reID uses the same folders with names ``0001_c2_f0046182.jpg``.

MSMT17 layout (``read_msmt17``), version 1 and version 2 (the same lists; version 2
has blurred faces and other folder names)::

    root/train/ or root/mask_train_v2/     crops in one folder per person id
    root/test/  or root/mask_test_v2/
    root/list_train.txt, list_val.txt      "0000/0000_000_01_0303morning_0015_0.jpg 0"
    root/list_query.txt, list_gallery.txt

Each list line is a path relative to the train (``list_train``, ``list_val``) or test
folder and the person id; the camera is the third ``_`` field of the file name
(1-based). MSMT17 numbers test identities from 0 again: its pid 0 is a person, not a
distractor, so :attr:`ReidDataset.distractor_pid` is ``None`` there.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from cv.errors import DataFormatError, NotFoundError
from cv.image import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

JUNK_PID = -1
"""Person id of junk crops (Market-1501)."""
DISTRACTOR_PID = 0
"""Person id of distractor crops (Market-1501)."""

MARKET_SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
"""Folder of each split in the Market-1501 layout."""
MSMT_VERSIONS = {"v1": ("train", "test"), "v2": ("mask_train_v2", "mask_test_v2")}
"""Train and test folders of each MSMT17 version."""
MSMT_LISTS = {
    "train": ("list_train.txt", 0),
    "val": ("list_val.txt", 0),
    "query": ("list_query.txt", 1),
    "gallery": ("list_gallery.txt", 1),
}
"""List file of each MSMT17 split, and whether it lies in the train (0) or test (1) folder."""

_MARKET = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")
_DUKE = re.compile(r"^(-?\d+)_c(\d+)_f(\d+)$")
_IGNORED = {"thumbs.db", ".ds_store", "desktop.ini"}


@dataclass(frozen=True, slots=True)
class ReidSample:
    """One crop of a re-ID dataset.

    Attributes:
        path: The image file (an RGB crop of one person).
        pid: Person id as in the dataset; ``-1`` junk, ``0`` a distractor in
            Market-1501 (see :attr:`ReidDataset.distractor_pid`).
        camid: Camera id as in the dataset (Market-1501: 1..6, MSMT17: 1..15).
        frame: Frame number, when the name holds one.
    """

    path: Path
    pid: int
    camid: int
    frame: int | None = None


@dataclass(slots=True)
class ReidDataset:
    """A re-ID dataset: train, query and gallery crops.

    Attributes:
        name: ``market1501``, ``dukemtmc``, ``msmt17`` or the folder's name.
        root: The dataset folder.
        train: Crops to learn from.
        query: Crops to search with.
        gallery: Crops to search in.
        val: MSMT17's validation crops (train identities), empty elsewhere.
        distractor_pid: The pid that marks distractors, or ``None`` where pid 0
            is a person (MSMT17).
    """

    name: str
    root: Path
    train: list[ReidSample]
    query: list[ReidSample]
    gallery: list[ReidSample]
    val: list[ReidSample] = field(default_factory=list)
    distractor_pid: int | None = DISTRACTOR_PID

    def is_identity(self, pid: int) -> bool:
        """Whether ``pid`` names a person (neither junk nor a distractor)."""
        return pid != JUNK_PID and pid != self.distractor_pid

    def train_pids(self) -> list[int]:
        """Sorted unique person ids of ``train``, junk and distractors left out."""
        return sorted({s.pid for s in self.train if self.is_identity(s.pid)})

    def pid_labels(self) -> dict[int, int]:
        """Class index ``0 .. n-1`` of each training pid, in pid order (for ID loss)."""
        return {pid: i for i, pid in enumerate(self.train_pids())}

    def splits(self) -> dict[str, list[ReidSample]]:
        """The non-empty splits by name (``train``, ``val``, ``query``, ``gallery``)."""
        all_ = {"train": self.train, "val": self.val, "query": self.query, "gallery": self.gallery}
        return {k: v for k, v in all_.items() if v or k != "val"}

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per split: ``ids`` (persons), ``images``, ``cameras``, ``distractors``
        (images) and ``junk`` (images)."""
        out: dict[str, dict[str, int]] = {}
        for split, samples in self.splits().items():
            out[split] = {
                "ids": len({s.pid for s in samples if self.is_identity(s.pid)}),
                "images": len(samples),
                "cameras": len({s.camid for s in samples}),
                "distractors": sum(
                    1
                    for s in samples
                    if self.distractor_pid is not None and s.pid == self.distractor_pid
                ),
                "junk": sum(1 for s in samples if s.pid == JUNK_PID),
            }
        return out


# ----------------------------------------------------------------- Market-1501


def parse_market_name(name: str) -> tuple[int, int, int | None] | None:
    """``(pid, camid, frame)`` of a Market-1501 or DukeMTMC-reID file name, or ``None``.

    ``0002_c1s1_000451_03.jpg`` gives ``(2, 1, 451)``; ``0001_c2_f0046182.jpg`` gives
    ``(1, 2, 46182)``.
    """
    stem = Path(name).stem
    m = _MARKET.match(stem)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(4))
    m = _DUKE.match(stem)
    if m:
        return int(m.group(1)), int(m.group(2)), int(m.group(3))
    return None


def _market_folder(folder: Path) -> tuple[list[ReidSample], set[str]]:
    """The crops of one Market-1501 folder, and which naming they use (market, duke)."""
    samples: list[ReidSample] = []
    kinds: set[str] = set()
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.lower() in _IGNORED or p.name.startswith("."):
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        parsed = parse_market_name(p.name)
        if parsed is None:
            raise DataFormatError(
                "file name is neither Market-1501's pppp_cXsY_ffffff_bb.jpg nor "
                "DukeMTMC-reID's pppp_cX_fffffff.jpg",
                path=p,
            )
        pid, camid, frame = parsed
        if pid < JUNK_PID:
            raise DataFormatError(f"person id {pid} is below -1 (junk)", path=p, field="pid")
        if camid < 1:
            raise DataFormatError(f"camera id must be >= 1, got {camid}", path=p, field="camera")
        kinds.add("duke" if _DUKE.match(p.stem) else "market")
        samples.append(ReidSample(path=p, pid=pid, camid=camid, frame=frame))
    return samples, kinds


def _market_root(root: Path) -> Path | None:
    """``root`` or its one child that holds Market-1501 folders."""
    for cand in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if any((cand / f).is_dir() for f in MARKET_SPLITS.values()):
            return cand
    return None


def read_market1501(root: str | PathLike[str]) -> ReidDataset:
    """A Market-1501 (or DukeMTMC-reID) dataset.

    Args:
        root: The folder holding ``bounding_box_train/``, ``bounding_box_test/`` and
            ``query/``, or a folder with one such folder inside (the unpacked
            ``Market-1501-v15.09.15/``). A missing split folder gives an empty split.

    Raises:
        NotFoundError: If ``root`` does not exist or holds none of the folders.
        DataFormatError: If an image's name does not parse; the message names it.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotFoundError("re-ID dataset folder does not exist", path=root)
    base = _market_root(root)
    if base is None:
        raise NotFoundError(
            f"no Market-1501 folders ({', '.join(MARKET_SPLITS.values())}) here or one level down",
            path=root,
        )
    splits: dict[str, list[ReidSample]] = {}
    kinds: set[str] = set()
    for split, folder in MARKET_SPLITS.items():
        if (base / folder).is_dir():
            splits[split], used = _market_folder(base / folder)
            kinds |= used
        else:
            log.warning("%s: no %s/ folder: the %s split is empty", base, folder, split)
            splits[split] = []
    name = "dukemtmc" if kinds == {"duke"} else "market1501"
    return ReidDataset(name=name, root=base, **splits)


# ----------------------------------------------------------------------- MSMT17


def _msmt_root(root: Path) -> tuple[Path, str] | None:
    """The folder holding MSMT17's lists and its version, searched two levels down."""
    cands = [root]
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        cands.append(child)
        cands.extend(sorted(p for p in child.iterdir() if p.is_dir()))
    for cand in cands:
        if not (cand / "list_train.txt").is_file():
            continue
        for version, (train, test) in MSMT_VERSIONS.items():
            if (cand / train).is_dir() and (cand / test).is_dir():
                return cand, version
    return None


def _msmt_list(list_path: Path, folder: Path, *, check_files: bool) -> list[ReidSample]:
    from cv.datasets.formats.common import text_rows

    if not list_path.is_file():
        raise NotFoundError("MSMT17 list file does not exist", path=list_path)
    samples: list[ReidSample] = []
    for line, fields in text_rows(list_path):
        if len(fields) != 2:
            raise DataFormatError(
                f"expected 'relative/path.jpg pid', got {len(fields)} fields",
                path=list_path,
                line=line,
            )
        rel, pid_text = fields
        try:
            pid = int(pid_text)
        except ValueError:
            raise DataFormatError(
                f"person id must be an integer, got {pid_text!r}",
                path=list_path,
                line=line,
                field="pid",
            ) from None
        parts = Path(rel).stem.split("_")
        try:
            camid = int(parts[2])
        except (IndexError, ValueError):
            raise DataFormatError(
                f"cannot read the camera from {rel!r}: expected pid_index_camera_..., "
                "e.g. 0000_000_01_0303morning_0015_0.jpg",
                path=list_path,
                line=line,
                field="camera",
            ) from None
        if pid < 0 or camid < 1:
            raise DataFormatError(
                f"person id must be >= 0 and camera >= 1, got {pid} and {camid}",
                path=list_path,
                line=line,
            )
        path = folder / rel
        if check_files and not path.is_file():
            raise NotFoundError(
                f"image {rel} listed here does not exist", path=list_path, line=line
            )
        samples.append(ReidSample(path=path, pid=pid, camid=camid))
    return samples


def read_msmt17(root: str | PathLike[str], *, check_files: bool = True) -> ReidDataset:
    """An MSMT17 dataset, version 1 or 2.

    Args:
        root: The folder holding ``list_train.txt`` and the train / test folders, or
            a folder up to two levels above it (``msmt17/MSMT17_V1/``).
        check_files: Check that every listed image exists.

    Raises:
        NotFoundError: If no MSMT17 layout is found, or a listed image is missing.
        DataFormatError: If a list line is malformed; the message names the list
            file and line.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotFoundError("re-ID dataset folder does not exist", path=root)
    found = _msmt_root(root)
    if found is None:
        raise NotFoundError(
            "no MSMT17 layout here or two levels down: expected list_train.txt beside "
            "train/ + test/ (version 1) or mask_train_v2/ + mask_test_v2/ (version 2)",
            path=root,
        )
    base, version = found
    folders = MSMT_VERSIONS[version]
    splits: dict[str, list[ReidSample]] = {}
    for split, (list_name, which) in MSMT_LISTS.items():
        list_path = base / list_name
        if split == "val" and not list_path.is_file():
            splits[split] = []
            continue
        splits[split] = _msmt_list(list_path, base / folders[which], check_files=check_files)
    return ReidDataset(name="msmt17", root=base, distractor_pid=None, **splits)


# ------------------------------------------------------------------- detection


def detect_reid_layout(root: str | PathLike[str]) -> str | None:
    """``market1501`` or ``msmt17`` when ``root`` (or a folder below it) holds that
    layout, else ``None``."""
    root = Path(root)
    if not root.is_dir():
        return None
    if any((root / f).is_dir() for f in MARKET_SPLITS.values()):
        return "market1501"
    if _msmt_root(root) is not None:
        return "msmt17"
    if _market_root(root) is not None:
        return "market1501"
    return None


def read_reid(root: str | PathLike[str]) -> ReidDataset:
    """A re-ID dataset in whichever layout ``root`` holds (Market-1501 / DukeMTMC-reID,
    or MSMT17 version 1 or 2).

    Raises:
        NotFoundError: If ``root`` does not exist or holds no known layout; the
            message lists what was looked for.
        DataFormatError: If the layout's files are malformed.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotFoundError("re-ID dataset folder does not exist", path=root)
    layout = detect_reid_layout(root)
    if layout == "msmt17":
        return read_msmt17(root)
    if layout == "market1501":
        return read_market1501(root)
    raise NotFoundError(
        "not a re-ID dataset: looked for Market-1501 / DukeMTMC-reID folders "
        f"({', '.join(MARKET_SPLITS.values())}) one level down and for MSMT17's "
        "list_train.txt with train/ + test/ or mask_train_v2/ + mask_test_v2/ two levels down",
        path=root,
    )
