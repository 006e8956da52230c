"""Complete PNG and JPEG files with bytes appended after their end are read (viewers
open them); files cut short stay refused as truncated, wherever the cut is."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import server_helpers as h
from PIL import Image

from cv.errors import ImageReadError
from cv.image import decode_image

TRAILERS = {
    "text": b"appended by a scanner's export tool\n" * 20,
    "zeros": b"\x00" * 4096,
    "a second EOI and IEND": b"\xff\xd9IEND\xaeB`\x82" + b"junk" * 30,
    "a second JPEG": h.jpeg_bytes(16, 16),
}


def progressive_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(h.gradient_rgb(120, 90)).save(buf, "JPEG", quality=85, progressive=True)
    return buf.getvalue()


def with_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding a whole JPEG (its own EOI included), as
    EXIF thumbnails are held."""
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


FILES = {
    "png": h.png_bytes(96, 80),
    "jpeg": h.jpeg_bytes(96, 80),
    "progressive jpeg": progressive_jpeg(),
    "jpeg with thumbnail": with_thumbnail(h.jpeg_bytes(96, 80), h.jpeg_bytes(24, 20)),
}


@pytest.mark.parametrize("kind", FILES)
@pytest.mark.parametrize("trailer", TRAILERS)
def test_bytes_after_the_end_are_ignored(kind, trailer):
    data = FILES[kind]
    expected = decode_image(data, name="whole")
    got = decode_image(data + TRAILERS[trailer], name="with trailer")
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("kind", FILES)
def test_a_file_cut_anywhere_is_refused(kind):
    data = FILES[kind]
    for keep in (len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 2, len(data) - 1):
        cut = data[:keep]
        with pytest.raises(ImageReadError, match="truncated") as err:
            decode_image(cut, name="cut")
        assert "cut" in str(err.value)


def test_a_thumbnails_end_marker_does_not_complete_a_cut_jpeg():
    # The thumbnail's EOI lies early in the file, after the main image is cut short.
    data = FILES["jpeg with thumbnail"]
    thumbnail_end = data.index(b"\xff\xd9") + 2
    cut = data[: (thumbnail_end + len(data)) // 2]
    assert b"\xff\xd9" in cut
    with pytest.raises(ImageReadError, match="truncated"):
        decode_image(cut, name="cut")


def test_an_upload_with_a_trailer_is_valid():
    from cv.inference_server.uploads import validate

    for kind, content_type in (("png", "image/png"), ("jpeg", "image/jpeg")):
        upload = validate(FILES[kind] + TRAILERS["text"], max_bytes=10**6, max_pixels=10**6)
        assert (upload.content_type, upload.width, upload.height) == (content_type, 96, 80)
