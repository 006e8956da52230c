"""What the toolkit writes, it reads back without losing anything YOLO cannot hold."""

from __future__ import annotations

from cv.datasets.formats import detect_format, load_dataset
from cv.datasets.synth import generate


def test_synthetic_folder_reads_back_as_coco_with_occlusion(tmp_path):
    made = generate(tmp_path, n_images=6, size=(128, 128), seed=3, workers=1, clean_fraction=0.0)
    # The folder also has a manifest.json and a data.yaml; neither may win.
    assert detect_format(tmp_path) == "coco"
    back = load_dataset(tmp_path)
    by_file = {im.file: im for im in back.images}
    assert len(by_file) == 6
    for rec in made.images:
        got = by_file[rec.file]
        assert got.split == rec.split
        assert [a.category for a in got.annotations] == [a.category for a in rec.annotations]
        assert [a.occlusion_level for a in got.annotations] == [
            a.occlusion_level for a in rec.annotations
        ]
        assert [a.concealment for a in got.annotations] == [a.concealment for a in rec.annotations]
        for a, b in zip(got.annotations, rec.annotations, strict=True):
            assert a.box == b.box
