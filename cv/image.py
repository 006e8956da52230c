"""The one image loader and writer.

Tensor contract: colour images are ``(H, W, 3) uint8`` in **RGB** order;
grey-scale images are ``(H, W)`` ``uint8`` or ``uint16``. OpenCV's BGR order
never leaves this module.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from cv.errors import ImageReadError, NotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _to_rgb8(img: NDArray, where: str) -> NDArray[np.uint8]:
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"unsupported pixel type {img.dtype}", path=where)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _raw_to_rgb_order(img: NDArray) -> NDArray:
    if img.ndim == 3 and img.shape[2] == 3:
        return img[..., ::-1].copy()
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return img


def read_image(path: str | PathLike[str], *, mode: Literal["rgb", "raw"] = "rgb") -> NDArray:
    """Reads an image file.

    Args:
        path: PNG, JPEG, BMP or TIFF (8- or 16-bit) file.
        mode: ``rgb`` gives ``(H, W, 3) uint8`` RGB whatever the file holds
            (16-bit is scaled down); ``raw`` keeps the stored depth and channels
            (RGB order for colour).

    Raises:
        NotFoundError: If the file does not exist.
        ImageReadError: If it cannot be decoded (truncated, not an image).
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError("image file does not exist", path=p)
    data = np.fromfile(p, dtype=np.uint8)
    return decode_image(data.tobytes(), mode=mode, name=str(p))


def decode_image(
    data: bytes, *, mode: Literal["rgb", "raw"] = "rgb", name: str = "<bytes>"
) -> NDArray:
    """Decodes an encoded image held in memory (see :func:`read_image`).

    Args:
        data: The encoded file contents.
        mode: As in :func:`read_image`.
        name: What to call the data in error messages (file name, request field).
    """
    if not data:
        raise ImageReadError("image is empty (0 bytes)", path=name)
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError("not a decodable image, or truncated", path=name)
    if _looks_truncated(data, name):
        raise ImageReadError("image file is truncated", path=name)
    return _to_rgb8(img, name) if mode == "rgb" else _raw_to_rgb_order(img)


def _looks_truncated(data: bytes, name: str) -> bool:
    """OpenCV decodes truncated JPEG/PNG files partially and silently; catch those.

    The file's structure is followed to its end marker (PNG's ``IEND`` chunk,
    JPEG's EOI after the last scan); bytes after it (a trailer some tools append)
    are ignored, as viewers ignore them.
    """
    if data[:8] == _PNG_SIGNATURE:
        return not _png_complete(data)
    if data[:2] == b"\xff\xd8":
        return not _jpeg_complete(data)
    return False


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_complete(data: bytes) -> bool:
    """Whether the PNG's chunks run whole up to its ``IEND`` chunk."""
    at, end = len(_PNG_SIGNATURE), len(data)
    while at + 12 <= end:  # length, type, CRC
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        at += 12 + length
        if at > end:
            return False  # the chunk is cut off
        if kind == b"IEND":
            return True
    return False


def _jpeg_complete(data: bytes) -> bool:
    """Whether the JPEG's segments and scans run up to an EOI marker.

    Segments are skipped by their length (an EXIF thumbnail's own EOI inside its
    APP1 segment does not count); entropy-coded data after a start of scan runs
    to the next marker that is not a stuffed ``FF 00`` or a restart marker.
    """
    at, end = 2, len(data)
    while at + 2 <= end:
        if data[at] != 0xFF:
            # Stray bytes where a marker belongs: decoders skip to the next marker.
            at = data.find(b"\xff", at)
            if at < 0:
                return False
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:  # EOI
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
            continue
        if at + 4 > end:
            return False
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker != 0xDA:  # not a start of scan: the segment is all there is
            continue
        while True:  # the scan's entropy-coded data
            at = data.find(b"\xff", at)
            if at < 0 or at + 1 >= end:
                return False
            follows = data[at + 1]
            if follows == 0x00 or 0xD0 <= follows <= 0xD7:
                at += 2  # a stuffed 0xFF byte or a restart marker: still the scan
            elif follows == 0xFF:
                at += 1  # fill bytes before the next marker
            else:
                break  # the next marker: EOI, or a table or scan of a progressive JPEG
    return False


def read_image_size(path: str | PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only.

    Raises:
        NotFoundError: If the file does not exist.
        ImageReadError: If the header is not that of a known image format.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            return im.size
    except FileNotFoundError:
        raise NotFoundError("image file does not exist", path=p) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f"unreadable image header ({exc})", path=p) from None


def _png_params(compression: int, fast: bool) -> list[int]:
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if fast:
        # Detector noise leaves zlib's string matching little to find in X-ray scans;
        # run-length matching on SUB-filtered rows is about twice as fast at a similar
        # size (measured with `customs-vision bench synth`).
        params += [
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FILTER_SUB,
            cv2.IMWRITE_PNG_STRATEGY,
            cv2.IMWRITE_PNG_STRATEGY_RLE,
        ]
    return params


def write_image(
    path: str | PathLike[str],
    image: NDArray,
    *,
    png_compression: int = 1,
    png_fast: bool = False,
    jpeg_quality: int = 95,
) -> Path:
    """Writes an RGB or grey-scale image; the format follows the suffix.

    Args:
        path: Target file; parent directories are created.
        image: ``(H, W, 3)`` RGB or ``(H, W)`` grey, ``uint8`` or ``uint16``.
        png_compression: zlib level 0-9 for PNG (1 is fast and still small).
        png_fast: Use the SUB filter and run-length strategy: lossless, about twice
            as fast on noisy scans, a few per cent larger on smooth images.
        jpeg_quality: 0-100 for JPEG.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arr = image[..., ::-1] if image.ndim == 3 else image
    params: list[int] = []
    suffix = p.suffix.lower()
    if suffix == ".png":
        params = _png_params(png_compression, png_fast)
    elif suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    ok, enc = cv2.imencode(suffix, np.ascontiguousarray(arr), params)
    if not ok:
        raise ImageReadError("could not encode image", path=p)
    enc.tofile(p)
    return p


def encode_png(image: NDArray, *, compression: int = 1) -> bytes:
    """PNG bytes of an RGB or grey image (for HTTP responses and hashing)."""
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, enc = cv2.imencode(
        ".png", np.ascontiguousarray(arr), [cv2.IMWRITE_PNG_COMPRESSION, compression]
    )
    if not ok:
        raise ImageReadError("could not encode image as PNG")
    return enc.tobytes()
