"""Errors, taxonomy, records, image I/O and drawing."""

from __future__ import annotations

import numpy as np
import pytest

from cv import taxonomy
from cv.draw import draw_boxes
from cv.errors import (
    ConfigError,
    CustomsVisionError,
    DataFormatError,
    DataValidationError,
    ImageReadError,
    NotFoundError,
)
from cv.image import decode_image, encode_png, read_image, read_image_size, write_image
from cv.records import Dataset, ImageRecord, occlusion_level


def test_error_message_names_file_line_and_field():
    err = DataFormatError("expected 6 columns, got 5", path="a/b.txt", line=3, field="x2")
    assert str(err) == "a/b.txt:3: x2: expected 6 columns, got 5"
    assert err.path == "a/b.txt" and err.line == 3 and err.field == "x2"
    assert str(ConfigError("bad", field="palette.metal")) == "palette.metal: bad"


def test_each_kind_of_failure_has_its_own_exit_code():
    kinds = [CustomsVisionError, ConfigError, DataFormatError, DataValidationError, NotFoundError]
    codes = [k.exit_code for k in kinds]
    assert len(set(codes)) == len(codes)
    assert issubclass(ImageReadError, DataFormatError)


def test_taxonomy_names_are_unique_snake_case():
    assert len(set(taxonomy.NAMES)) == len(taxonomy.NAMES)
    for name in taxonomy.NAMES:
        assert name == name.lower() and " " not in name
    assert taxonomy.category("gun").threat
    assert taxonomy.category_id(taxonomy.NAMES[3]) == 3
    with pytest.raises(KeyError):
        taxonomy.category("banana")


@pytest.mark.parametrize(
    ("fraction", "level"), [(0.0, 1), (0.249, 1), (0.25, 2), (0.59, 2), (0.6, 3), (1.0, 3)]
)
def test_occlusion_levels(fraction, level):
    assert occlusion_level(fraction) == level


def test_dataset_paths_and_used_classes(tmp_path):
    rec = ImageRecord("images/a.png", 10, 10)
    ds = Dataset("x", [rec], root=tmp_path)
    assert ds.image_path(rec) == tmp_path / "images/a.png"
    assert ds.used_classes() == []


def test_image_round_trip_keeps_rgb_order(tmp_path):
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 200  # red
    path = write_image(tmp_path / "red.png", img)
    back = read_image(path)
    assert back.shape == (4, 6, 3) and back.dtype == np.uint8
    assert back[0, 0].tolist() == [200, 0, 0]
    assert read_image_size(path) == (6, 4)
    assert decode_image(encode_png(img))[0, 0].tolist() == [200, 0, 0]


def test_sixteen_bit_raw_and_rgb(tmp_path):
    grey = np.full((5, 7), 65535, np.uint16)
    path = write_image(tmp_path / "g.tif", grey)
    raw = read_image(path, mode="raw")
    assert raw.dtype == np.uint16 and raw.shape == (5, 7) and raw.max() == 65535
    rgb = read_image(path)
    assert rgb.shape == (5, 7, 3) and rgb.max() == 255


def test_missing_truncated_and_garbage_images(tmp_path):
    with pytest.raises(NotFoundError, match=r"nope\.png"):
        read_image(tmp_path / "nope.png")
    path = write_image(tmp_path / "ok.png", np.full((32, 32, 3), 90, np.uint8))
    data = path.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"text\.jpg"):
        read_image(tmp_path / "text.jpg")
    with pytest.raises(ImageReadError, match="unreadable image header"):
        read_image_size(tmp_path / "text.jpg")
    with pytest.raises(ImageReadError, match="upload"):
        decode_image(b"", name="upload")


def test_draw_boxes_marks_the_box_edges_only():
    img = np.full((50, 60, 3), 255, np.uint8)
    out = draw_boxes(img, [[10, 10, 30, 40]], class_ids=[2], thickness=1)
    assert out[10, 20].tolist() == [255, 40, 40]  # top edge, palette colour 2
    assert out[25, 20].tolist() == [255, 255, 255]  # inside untouched
    assert img[10, 20].tolist() == [255, 255, 255]  # input not modified


def test_garbage_images_stay_a_named_error_once_ultralytics_is_loaded(tmp_path):
    # ultralytics patches PIL.Image.open to install a HEIF plugin on any file Pillow
    # cannot identify; our one import point gives PIL its own function back.
    from PIL import Image

    from cv.models.ultra import ultralytics

    ultralytics()
    assert Image.open.__module__.startswith("PIL")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="unreadable image header"):
        read_image_size(tmp_path / "text.jpg")
