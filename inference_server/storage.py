"""Scan images on disk, content-addressed by sha256 and written atomically.

An image's bytes are kept exactly as uploaded (PNG, JPEG or TIFF), under
``<root>/<aa>/<bb>/<sha256>.<ext>`` where ``aa`` and ``bb`` are the first hex
digits of the hash, so no folder grows too large. The same image uploaded twice
is stored once. Files are written to a temporary name in the target folder and
renamed into place, so a reader (or a restart after ``kill -9``) never sees a
half-written image.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cv.errors import NotFoundError

SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif"}
"""File suffix of each content type the server stores."""


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where an image was stored.

    Attributes:
        sha256: Hex digest of the bytes.
        path: Path relative to the store's root (what the database keeps).
    """

    sha256: str
    path: str


class ImageStore:
    """A folder of images named by their sha256.

    Args:
        root: The folder; created when missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, data: bytes, content_type: str) -> StoredImage:
        """Stores ``data`` (once per distinct content) and says where.

        Args:
            data: The encoded image as uploaded.
            content_type: ``image/png``, ``image/jpeg`` or ``image/tiff``: picks the suffix.
        """
        digest = hashlib.sha256(data).hexdigest()
        rel = f"{digest[:2]}/{digest[2:4]}/{digest}{SUFFIXES[content_type]}"
        target = self.root / rel
        if target.is_file():
            return StoredImage(digest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # No fsync: the scan row is committed after this returns, and a killed
            # process loses nothing the kernel has already been given. Power loss
            # is the storage layer's job (a journaled or battery-backed disk).
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredImage(digest, rel)

    def path(self, rel: str) -> Path:
        """Absolute path of a stored image.

        Raises:
            NotFoundError: If the file is not in the store.
        """
        p = self.root / rel
        if not p.is_file():
            raise NotFoundError("stored image is missing from the image store", path=p)
        return p

    def read(self, rel: str) -> bytes:
        """The bytes of a stored image (see :meth:`path`)."""
        return self.path(rel).read_bytes()
