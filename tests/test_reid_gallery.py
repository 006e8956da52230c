"""The watch-list vector index: faiss (flat, HNSW) and exact NumPy search agree, removal,
several vectors per key, input checks, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from cv.errors import ConfigError, DataValidationError
from cv.models import gallery
from cv.models.gallery import VectorIndex, as_unit_vectors


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _data(n=2000, dim=48, queries=200, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    x = _unit(rng.standard_normal((n, dim)))
    src = rng.choice(n, size=queries, replace=False)
    q = _unit(x[src] + noise * rng.standard_normal((queries, dim)) / np.sqrt(dim) * 4)
    return x, q


BACKENDS = {
    "exact": {"backend": "exact"},
    "faiss-flat": {"backend": "faiss"},
    "faiss-hnsw": {"backend": "faiss", "hnsw_min": 0},
}


def _index(kind: str, dim: int, **kw) -> VectorIndex:
    index = VectorIndex(dim, **BACKENDS[kind], **kw)
    return index


@pytest.fixture(scope="module")
def filled():
    """Every backend over the same 2000 vectors, keys k0..k1999, and 200 queries."""
    x, q = _data()
    keys = [f"k{i}" for i in range(len(x))]
    out = {}
    for kind in BACKENDS:
        index = _index(kind, x.shape[1])
        index.add(keys, x)
        assert index.kind == kind if kind != "exact" else index.kind == "numpy-exact"
        out[kind] = index
    return out, q


def test_faiss_flat_and_exact_agree(filled):
    indexes, q = filled
    exact = indexes["exact"].search(q, 5)
    flat = indexes["faiss-flat"].search(q, 5)
    assert [[k for k, _ in r] for r in flat] == [[k for k, _ in r] for r in exact]
    for a, b in zip(flat, exact, strict=True):
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
        assert [s for _, s in a] == sorted((s for _, s in a), reverse=True)


def test_hnsw_recall_against_exact(filled):
    indexes, q = filled
    exact = indexes["exact"].search(q, 5)
    hnsw = indexes["faiss-hnsw"].search(q, 5)
    recall1 = np.mean([a[0][0] == b[0][0] for a, b in zip(hnsw, exact, strict=True)])
    recall5 = np.mean(
        [len({k for k, _ in a} & {k for k, _ in b}) / 5 for a, b in zip(hnsw, exact, strict=True)]
    )
    assert recall1 >= 0.99
    assert recall5 >= 0.95


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_several_vectors_per_key_come_back_once_with_the_best(kind):
    rng = np.random.default_rng(3)
    dim = 16
    base = _unit(rng.standard_normal((6, dim)))
    index = _index(kind, dim)
    # "alice" is enrolled from three images, one of them the query itself.
    query = base[0]
    alice = np.stack([_unit(query[None] + 0.5 * base[1:2])[0], query, base[2]])
    index.add(["alice"] * 3, alice)
    index.add(["bob", "carol"], base[3:5])
    index.add("alice", base[5])  # a fourth image, added later under the same key
    assert len(index) == 6 and index.num_keys == 3 and index.count("alice") == 4
    hits = index.search(query, k=3)[0]
    assert [k for k, _ in hits].count("alice") == 1
    assert hits[0][0] == "alice" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3  # k distinct keys, although alice holds 4 vectors
    assert len(index.search(query, k=10)[0]) == 3  # only 3 keys exist


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_remove(kind, monkeypatch):
    # Rebuild HNSW after as few dead rows as flat indexes do, so that both paths run.
    monkeypatch.setattr(gallery, "_COMPACT_MIN_HNSW", 64)
    x, q = _data(n=400, dim=24, queries=40, seed=5)
    keys = [f"k{i % 200}" for i in range(400)]  # two vectors per key
    index = _index(kind, 24)
    index.add(keys, x)
    top = [r[0][0] for r in index.search(q, 3)]
    gone = sorted(set(top))[:10]
    assert index.remove([*gone, "never-enrolled"]) == 2 * len(gone)
    assert len(index) == 400 - 2 * len(gone)
    assert all(k not in index for k in gone)
    assert index.num_keys == 200 - len(gone)
    for row in index.search(q, 5):
        assert not {k for k, _ in row} & set(gone)
        assert len(row) == 5
    assert index.remove(gone) == 0  # already gone
    # Remove most keys: the index compacts itself and still answers correctly.
    rest = index.keys()
    rows_before = index._rows.n
    assert index.remove(rest[:-3]) > 0
    assert index._rows.n == len(index) == 6 < rows_before  # rebuilt from the live rows
    assert sorted(index.keys()) == sorted(rest[-3:])
    found = index.search(q[:5], 5)
    assert all(sorted(k for k, _ in r) == sorted(rest[-3:]) for r in found)
    # Re-enrol a removed key.
    index.add([gone[0]], x[0])
    assert gone[0] in index and index.count(gone[0]) == 1
    held = len(index)
    assert index.remove(index.keys()) == held
    assert len(index) == 0 and index.num_keys == 0
    assert index.search(q[:2], 3) == [[], []]


def test_faiss_switches_to_hnsw_at_the_threshold():
    x, q = _data(n=300, dim=16, queries=20, seed=7)
    index = VectorIndex(16, backend="faiss", hnsw_min=200)
    index.add([f"a{i}" for i in range(150)], x[:150])
    assert index.kind == "faiss-flat"
    index.add([f"b{i}" for i in range(150)], x[150:])
    assert index.kind == "faiss-hnsw" and len(index) == 300
    exact = VectorIndex(16, backend="exact")
    exact.add(index.keys(), x)
    assert index.search(q, 3) == [
        [(k, pytest.approx(s, abs=1e-5)) for k, s in r] for r in exact.search(q, 3)
    ]


def test_input_checks():
    index = VectorIndex(4, backend="exact")
    v = np.array([[1.0, 0, 0, 0]], dtype=np.float32)
    with pytest.raises(DataValidationError, match=r"shape \(N, 4\)"):
        index.add(["a"], np.ones((1, 5), dtype=np.float32))
    with pytest.raises(DataValidationError, match="floating"):
        index.add(["a"], np.array([[1, 0, 0, 0]]))
    with pytest.raises(DataValidationError, match="row 1 holds NaN"):
        index.add(["a", "b"], np.array([[1.0, 0, 0, 0], [np.nan, 0, 0, 0]]))
    with pytest.raises(DataValidationError, match="zero vector"):
        index.add(["a"], np.zeros((1, 4)))
    with pytest.raises(DataValidationError, match=r"row 0 has norm 2\.0"):
        index.add(["a"], 2 * v)
    with pytest.raises(DataValidationError, match="2 keys for 1 vectors"):
        index.add(["a", "b"], v)
    with pytest.raises(DataValidationError, match="non-empty string"):
        index.add([""], v)
    with pytest.raises(DataValidationError, match="queries"):
        index.search(np.ones(3, dtype=np.float32))
    with pytest.raises(DataValidationError, match="k must be"):
        index.search(v, k=0)
    assert len(index) == 0  # nothing half-added
    index.add(["a"], v.astype(np.float64))  # float64 accepted, stored as float32
    assert index.search(v)[0] == [("a", pytest.approx(1.0))]
    # normalize=True divides by the norm instead of refusing.
    lenient = VectorIndex(4, backend="exact", normalize=True)
    lenient.add(["a"], 3 * v)
    assert lenient.search(5 * v)[0][0][1] == pytest.approx(1.0)
    assert as_unit_vectors(3 * v, 4, normalize=True).tolist() == v.tolist()
    with pytest.raises(ConfigError, match="unknown backend"):
        VectorIndex(4, backend="annoy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dimension"):
        VectorIndex(0)


@pytest.mark.parametrize("kind", ["exact", "faiss-flat", "faiss-hnsw"])
def test_save_and_load(tmp_path, kind):
    x, q = _data(n=300, dim=16, queries=30, seed=11)
    index = _index(kind, 16)
    index.add([f"k{i % 150}" for i in range(300)], x)
    index.remove(["k1", "k2"])
    expected = index.search(q, 4)
    index.save(tmp_path / "ix")
    loaded = VectorIndex.load(tmp_path / "ix")
    assert loaded.kind == index.kind and len(loaded) == len(index) == 296
    assert loaded.num_keys == 148 and "k1" not in loaded
    got = loaded.search(q, 4)
    assert [[k for k, _ in r] for r in got] == [[k for k, _ in r] for r in expected]
    # Read back with the NumPy fallback (as where faiss is not installed).
    exact = VectorIndex.load(tmp_path / "ix", backend="exact")
    assert exact.kind == "numpy-exact" and len(exact) == 296
    assert exact.search(q, 1)[0][0][0] == got[0][0][0] or kind == "faiss-hnsw"


def test_bench_search_smoke():
    from cv.evaluation.bench_reid_search import bench_search

    r = bench_search(n=3000, dim=32, queries=50, k=5, backend="faiss", hnsw_min=1000, warmup=5)
    assert r["kind"] == "faiss-hnsw" and r["n"] == 3000 and r["queries"] == 50
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["recall_at_1"] >= 0.95 and r["recall_at_k"] >= 0.95
    assert 0.5 < r["source_cosine"] < 0.95
    exact = bench_search(n=3000, dim=32, queries=50, backend="exact", warmup=5)
    assert exact["kind"] == "numpy-exact" and exact["recall_at_1"] == 1.0
