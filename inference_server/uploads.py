"""Checking uploaded scan images before anything is stored.

Each check answers a distinct, named 4xx (never a 500):

===  ==================================================================
413  the body is larger than ``max_upload_bytes`` (checked while it is
     received, before it is all read), or the image header claims more
     than ``max_pixels`` pixels (checked before decoding)
415  the bytes are not a PNG, JPEG or TIFF image (sniffed from the first
     bytes; the client's content type and file name are not trusted)
422  empty, truncated or corrupt image, or a pixel type we cannot read
===  ==================================================================

:class:`BodyLimit` is the ASGI middleware that enforces the byte limit while the
body arrives; :func:`validate` does the rest on the bytes.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import HTTPException, status
from numpy.typing import NDArray

from cv.errors import ImageReadError
from cv.image import decode_image

# Magic numbers of the formats we take; what the client claims is ignored.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the multipart boundaries and metadata fields beside the image."""


@dataclass(frozen=True, slots=True)
class ValidImage:
    """An upload that passed every check.

    Attributes:
        data: The encoded bytes, as uploaded (what is stored and hashed).
        content_type: ``image/png``, ``image/jpeg`` or ``image/tiff``, from the bytes.
        width: Pixels across.
        height: Pixels down.
        pixels: Decoded ``(H, W, 3) uint8`` RGB (16-bit images scaled down), what
            the detector takes.
    """

    data: bytes
    content_type: str
    width: int
    height: int
    pixels: NDArray[np.uint8]


def _reject(code: int, message: str) -> HTTPException:
    return HTTPException(code, detail=f"image: {message}")


def sniff(data: bytes) -> str | None:
    """The content type the bytes start like, or ``None`` for anything else."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def header_size(data: bytes, content_type: str, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` from the image header, without decoding the pixels.

    Raises:
        HTTPException: 413 if the header claims more than ``max_pixels``; 422 if
            the header is unreadable.
    """
    if content_type == "image/png":
        # IHDR is always the first chunk: length, "IHDR", width, height (big-endian).
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise _reject(422, "corrupt PNG: no IHDR header")
        width, height = struct.unpack(">II", data[16:24])
    else:
        from PIL import Image, UnidentifiedImageError

        with warnings.catch_warnings():
            # Our own pixel limit is checked below; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data)) as im:
                    width, height = im.size
            except Image.DecompressionBombError:
                raise _reject(
                    413, f"the header claims more than {max_pixels} pixels (width x height)"
                ) from None
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                raise _reject(422, f"corrupt image header ({exc})") from None
    if width < 1 or height < 1:
        raise _reject(422, f"the header gives an empty size {width}x{height}")
    if width * height > max_pixels:
        raise _reject(
            413,
            f"{width}x{height} = {width * height} pixels is more than the limit of "
            f"{max_pixels} pixels",
        )
    return width, height


def validate(data: bytes, *, max_bytes: int, max_pixels: int) -> ValidImage:
    """Checks an uploaded image and decodes it (CPU work: call it off the event loop).

    Args:
        data: The uploaded file's bytes.
        max_bytes: Largest accepted file.
        max_pixels: Largest accepted width × height.

    Raises:
        HTTPException: 413, 415 or 422 with a ``detail`` naming the problem (see
            the module docstring).
    """
    if not data:
        raise _reject(422, "the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise _reject(413, f"{len(data)} bytes is more than the limit of {max_bytes} bytes")
    content_type = sniff(data)
    if content_type is None:
        raise _reject(
            415,
            f"not a PNG, JPEG or TIFF image (the file starts with {data[:8]!r}); "
            "the type is read from the bytes, not from the file name or header",
        )
    width, height = header_size(data, content_type, max_pixels)
    try:
        pixels = decode_image(data, mode="rgb", name="image")
    except ImageReadError as exc:
        raise _reject(422, f"{exc.reason} ({content_type})") from None
    if pixels.shape[:2] != (height, width):
        raise _reject(
            422,
            f"decoded size {pixels.shape[1]}x{pixels.shape[0]} does not match the header's "
            f"{width}x{height}",
        )
    return ValidImage(data, content_type, width, height, pixels)


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes``, before they are read.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body
    is counted as it arrives and refused as soon as it passes the limit, so an
    enormous upload never fills memory or disk.

    Args:
        app: The ASGI app to wrap.
        max_bytes: Largest accepted body.
    """

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_json(scope, send, 413, _too_large(declared, limit))
                    return
        received = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPExceptions from body parsing as they are.
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE, detail=_too_large(received, limit)
                    )
            return message

        await self.app(scope, counting_receive, send)


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size}+ bytes is more than the limit of {limit} bytes"


async def _send_json(scope: dict[str, Any], send: Any, code: int, detail: str) -> None:
    """Answers ``{"detail": ..., "request_id": ...}`` as every error body is (the id the
    request-observing middleware keeps in the request's state)."""
    import json

    from cv.inference_server.logs import error_body

    body = json.dumps(error_body(detail, scope.get("state", {}).get("request_id"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
