"""Synthetic scan generator: determinism, exact boxes, occlusion, options, output files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cv.cli import main
from cv.datasets import shapes as S
from cv.datasets.synth import (
    PERCEIVABLE_FRACTION,
    PlacedTarget,
    Scene,
    _cover_plate,
    compose_scene,
    generate,
    image_seed,
    make_scan,
    perceivable_fraction,
)
from cv.errors import ConfigError, NotFoundError
from cv.image import read_image
from cv.materials import MATERIALS
from cv.records import CONCEALMENT_MODES
from cv.xray import DualEnergy, load_profile

SMALL = (160, 160)


def mask_box(p: S.Placed) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(p.mask)
    return (p.x + xs.min(), p.y + ys.min(), p.x + xs.max() + 1, p.y + ys.max() + 1)


def test_rectangle_box_is_hand_worked() -> None:
    shape = S.Shape("plate", [S.Part([S.rect(40, 20)], MATERIALS["steel"], 0.2)], "knife")
    im = DualEnergy.empty(160, 160)
    placed = S.rasterise(
        shape, im, scale=1.0, angle=0.0, center=(80.0, 80.0), rng=np.random.default_rng(0)
    )
    # fillPoly covers the outline's pixels inclusively: columns 60..100, rows 70..90.
    assert placed.box(160, 160) == (60.0, 70.0, 101.0, 91.0)
    assert int(placed.mask.sum()) == 41 * 21
    assert np.count_nonzero(im.high) == 41 * 21
    # Rotated by 90°: the box swaps width and height.
    im2 = DualEnergy.empty(160, 160)
    p2 = S.rasterise(
        shape, im2, scale=1.0, angle=90.0, center=(80.0, 80.0), rng=np.random.default_rng(0)
    )
    assert p2.box(160, 160) == (70.0, 60.0, 91.0, 101.0)


def test_plain_view_object_box_matches_its_mask() -> None:
    for seed in range(6):
        rng = np.random.default_rng(seed)
        scene = compose_scene(
            rng,
            width=160,
            height=160,
            container="parcel",
            targets=["knife", "cash"],
            concealment=["plain_view"],
        )
        anns = scene.annotations()
        assert [a.category for a in anns] == ["knife", "cash"]
        for a, t in zip(anns, scene.targets, strict=True):
            assert a.box == mask_box(t.placed)
            assert 0 <= a.box[0] < a.box[2] <= 160 and 0 <= a.box[1] < a.box[3] <= 160
            assert a.concealment == "plain_view"
            # The object is really in the scan: its pixels carry its own attenuation.
            ys, xs = np.nonzero(t.placed.mask)
            assert (
                scene.image.high[t.placed.y + ys, t.placed.x + xs]
                >= t.placed.own_high[ys, xs] - 1e-5
            ).all()


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_occlusion_under_metal_plate_is_covered_fraction(fraction: float) -> None:
    rng = np.random.default_rng(3)
    im = DualEnergy.empty(200, 200)
    placed = S.rasterise(S.drugs(rng), im, scale=0.8, angle=20.0, center=(100.0, 100.0), rng=rng)
    scene = Scene(
        image=im,
        container="parcel",
        targets=[PlacedTarget(placed=placed, concealment="under_metal")],
    )
    assert scene.occlusion(placed) == 0.0
    before = im.high.copy()
    # A plate that out-attenuates the object hides exactly the covered fraction.
    _cover_plate(rng, im, placed, fraction, attenuation=1.3 * float(placed.own_high.max()))
    assert scene.occlusion(placed) == pytest.approx(fraction, abs=0.03)
    (ann,) = scene.annotations()
    assert ann.occlusion_level == (1 if fraction < 0.25 else 2 if fraction < 0.6 else 3)
    # A default (realistic) plate covers the same share of the object's pixels.
    im.high[:] = before
    _cover_plate(np.random.default_rng(9), im, placed, fraction)
    ys, xs = np.nonzero(placed.mask)
    covered = im.high[placed.y + ys, placed.x + xs] > before[placed.y + ys, placed.x + xs]
    assert covered.mean() == pytest.approx(fraction, abs=0.03)


def test_make_scan_is_deterministic_and_varied() -> None:
    p = load_profile("noisy")
    a_img, a_rec = make_scan(123, size=SMALL, profile=p)
    b_img, b_rec = make_scan(123, size=SMALL, profile=p)
    c_img, _ = make_scan(124, size=SMALL, profile=p)
    np.testing.assert_array_equal(a_img, b_img)
    assert a_rec == b_rec
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (160, 160, 3) and a_img.dtype == np.uint8
    g, _ = make_scan(123, size=SMALL, profile=p, grey=True)
    assert g.shape == (160, 160)


def test_every_concealment_mode_and_occlusion_level_appears() -> None:
    p = load_profile("saturated")
    modes, levels, classes = set(), set(), set()
    for i in range(40):
        _, rec = make_scan(image_seed(5, i), size=SMALL, profile=p, threats=(3, 3))
        for a in rec.annotations:
            modes.add(a.concealment)
            levels.add(a.occlusion_level)
            classes.add(a.category)
            assert 0.0 <= a.occlusion <= 1.0
            assert 0 <= a.box[0] < a.box[2] <= 160 and 0 <= a.box[1] < a.box[3] <= 160
    assert modes == set(CONCEALMENT_MODES)
    assert levels == {1, 2, 3}
    assert len(classes) >= 10


def test_scan_looks_like_a_bag_not_blank() -> None:
    p = load_profile("saturated")
    img, rec = make_scan(7, size=(320, 320), profile=p, container="suitcase")
    bg = np.array(p.background)
    not_air = (np.abs(img.astype(int) - bg).max(axis=2) > 10).mean()
    assert 0.3 < not_air < 0.98
    assert rec.meta["container"] == "suitcase" and rec.meta["profile"] == "saturated"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".png", ".txt")
    }


def test_generate_identical_across_worker_counts_and_writes_outputs(tmp_path: Path) -> None:
    kw = dict(
        n_images=10,
        size=(128, 128),
        seed=11,
        clean_fraction=0.3,
        profiles=["pale", "noisy"],
        show_progress=False,
    )
    ds1 = generate(tmp_path / "w1", workers=1, **kw)
    ds2 = generate(tmp_path / "w2", workers=2, **kw)
    f1, f2 = _files(tmp_path / "w1"), _files(tmp_path / "w2")
    assert f1 == f2 and len([k for k in f1 if k.endswith(".png")]) == 10
    assert [r.annotations for r in ds1.images] == [r.annotations for r in ds2.images]

    out = tmp_path / "w1"
    assert ds1.root == out
    assert sum(1 for r in ds1.images if not r.annotations) == 3  # clean fraction, exactly
    splits = [r.split for r in ds1.images]
    assert splits.count("train") == 8 and splits.count("val") == 1 and splits.count("test") == 1
    for r in ds1.images:
        assert r.file == f"images/{r.split}/{r.meta['index']:06d}.png"
        assert (out / r.file).is_file()
        assert (out / "labels" / r.split / (Path(r.file).stem + ".txt")).is_file()
        assert r.meta["profile"] in ("pale", "noisy")
    assert (out / "data.yaml").is_file()
    for split in ("train", "val", "test"):
        doc = json.loads((out / "annotations" / f"{split}.json").read_text())
        assert len(doc["images"]) == splits.count(split)
    man = json.loads((out / "manifest.json").read_text())
    assert man["options"]["seed"] == 11 and len(man["images"]) == 10
    assert sum(man["counts"]["class"].values()) == sum(len(r.annotations) for r in ds1.images)
    # The per-image seed in the manifest remakes the image exactly.
    rec = ds1.images[0]
    img, again = make_scan(
        rec.meta["seed"],
        size=(128, 128),
        profile=load_profile(rec.meta["profile"]),
        clean=not rec.annotations,
        file=rec.file,
    )
    assert again.annotations == rec.annotations
    np.testing.assert_array_equal(read_image(out / rec.file), img)


def test_generate_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="split"):
        generate(tmp_path, n_images=2, splits=(0.5, 0.6, 0.1))
    with pytest.raises(ConfigError, match="'sword'"):
        generate(tmp_path, n_images=2, classes=["knife", "sword"])
    with pytest.raises(NotFoundError, match="no-such"):
        generate(tmp_path, n_images=2, profiles=["no-such"])
    with pytest.raises(ConfigError):
        generate(tmp_path, n_images=0)
    with pytest.raises(ConfigError, match="threats"):
        generate(tmp_path, n_images=2, threats=(3, 1))


def test_cli_synth_and_profiles(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    rc = main(
        [
            "data",
            "synth",
            "--out",
            str(out),
            "--images",
            "3",
            "--size",
            "96",
            "--workers",
            "1",
            "--classes",
            "knife,gun",
            "--seed",
            "2",
        ]
    )
    assert rc == 0
    doc = json.loads((out / "annotations" / "train.json").read_text())
    assert {c["name"] for c in doc["categories"]} == {"knife", "gun"}
    assert main(["data", "profiles"]) == 0
    assert main(["data", "synth", "--out", str(out), "--images", "2", "--splits", "0.5,0.5"]) == 2
    assert (
        main(["data", "synth", "--out", str(out), "--images", "2", "--classes", "knife,sword"]) == 2
    )


def test_every_labelled_object_is_perceivable() -> None:
    levels: dict[str, int] = {}
    for i in range(60):
        rng = np.random.default_rng(image_seed(21, i))
        container = S.CONTAINER_KINDS[i % 4]
        scene = compose_scene(
            rng,
            width=192,
            height=192,
            container=container,
            targets=[str(c) for c in rng.choice(sorted(S.TARGET_BUILDERS), 3)],
        )
        assert scene.targets, "every target was dropped"
        for t in scene.targets:
            seen = perceivable_fraction(scene.image, t.placed)
            assert seen >= PERCEIVABLE_FRACTION, (i, t.concealment, seen)
            assert scene.perceivable(t.placed) == seen
            box = t.placed.box(192, 192)
            assert box is not None and box == mask_box(t.placed)
        for a in scene.annotations():
            levels[a.concealment] = levels.get(a.concealment, 0) + 1
    assert set(levels) == set(CONCEALMENT_MODES)


def test_perceivability_floor_is_physical() -> None:
    # 1 cm of paper over air adds ~13 % contrast: perceivable; under 1.5 cm of lead it
    # is not, whatever its own contrast.
    shape = S.Shape("bundle", [S.Part([S.rect(60, 30)], MATERIALS["paper"], 1.0)], "cash")
    im = DualEnergy.empty(100, 100)
    placed = S.rasterise(
        shape, im, scale=1.0, angle=0.0, center=(50, 50), rng=np.random.default_rng(0)
    )
    assert perceivable_fraction(im, placed) == 1.0
    lead = np.full((100, 100), 0.06, np.float32)
    from cv.xray import add_material

    add_material(im, MATERIALS["lead"], lead)
    assert perceivable_fraction(im, placed) == 0.0
