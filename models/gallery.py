"""The watch-list gallery: cosine-similarity search over enrolled embeddings.

:class:`VectorIndex` holds L2-normalised ``float32`` vectors, each under a key
(a watch-list entry); a key may hold several vectors (an entry enrolled from
several images). :meth:`VectorIndex.search` returns, per query, the best keys
with their best similarity, each key once. Similarity is the inner product of
unit vectors, i.e. the cosine similarity, in ``[-1, 1]``.

Backends:

* ``faiss`` (faiss-cpu, imported only when used): an exact ``IndexFlatIP`` while
  the gallery holds fewer than ``hnsw_min`` vectors, an HNSW graph over inner
  products (``IndexHNSWFlat``) from then on. Watch lists are mostly small and
  exact search is both exact and fast there; at 100,000 vectors of 512 floats an
  exact scan takes about 8 ms per query on the 2-core reference machine, HNSW
  about 2.3 ms, at the price of missing the exact best entry for a few queries
  (see :data:`HNSW_EF_SEARCH`; ``customs-vision bench reid`` measures both, through
  :mod:`cv.evaluation.bench_reid_search`).
* ``exact``: a NumPy matrix product, the fallback when faiss is missing.
* ``auto``: ``faiss`` when it imports, else ``exact``.

Removal: faiss' HNSW graph cannot delete nodes, so removed vectors are marked
dead (a tombstone bitmap) and filtered inside the search
(``IDSelectorBitmap``); they keep serving as routing nodes, so recall does not
suffer (measured at 100,000 vectors with 45 % of them removed: recall@1 and
latency unchanged, removal 0.1 s). When the dead rows outnumber a share of the
live ones the index is rebuilt from the live vectors (flat and NumPy: a quarter;
HNSW: as many dead as live, since rebuilding a graph takes about 40 s at
100,000 vectors).

Search over-fetches ``k × (most vectors held by one key)`` rows, so that ``k``
distinct keys are always among them for an exact search.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cv.errors import ConfigError, DataFormatError, DataValidationError, NotFoundError

log = logging.getLogger(__name__)

Backend = Literal["auto", "faiss", "exact"]

HNSW_MIN_VECTORS = 30_000
"""From this many live vectors on, the faiss backend searches an HNSW graph.

Single-query latency measured at 512 dimensions on the 2-core reference machine
(p50): exact flat 0.3 ms at 10,000 vectors, 1.3 ms at 20,000, 3.7 ms at 50,000
and 7.6 ms at 100,000; HNSW (the settings below) 0.7, 1.4, 1.9 and 2.3 ms. Up to
about 30,000 the exact scan costs no more than the graph does at 100,000, and it
is exact, so it is kept until then."""
HNSW_M = 32
"""Graph degree of HNSW (faiss' ``M``)."""
HNSW_EF_CONSTRUCTION = 200
"""Candidate list while building. 200 rather than 100 raised recall@1 against exact
search from 0.933 to 0.954 at 100,000 hard vectors (efSearch 1024), for twice the
build time: 40-55 s for 100,000 vectors added at once on 2 cores, 1.4 ms per
vector added one at a time. The add that crosses :data:`HNSW_MIN_VECTORS` builds
the graph from the flat index (16 s at 30,000)."""
HNSW_EF_SEARCH = 1024
"""Candidate list while searching: at 100,000 vectors p50 2.3 ms and p99 2.8 ms
(target 5 ms). Recall@1 against exact search: 0.954 on the benchmark's hard case
(queries at cosine 0.78 from their entry, unrelated entries up to 0.75), 0.994
on near-duplicate queries (cosine 0.89); 512 gives 0.918 and 0.985 at 1.3 ms."""
NORM_TOLERANCE = 1e-3
"""A vector counts as L2-normalised when ``|‖v‖ - 1| ≤`` this."""

# Up to this many queries a faiss search runs on one thread (see _FaissEngine.search).
_THREADED_QUERIES = 8
# Dead rows tolerated before a rebuild, at the least (small indexes rebuild rarely).
_COMPACT_MIN_FLAT = 64
_COMPACT_MIN_HNSW = 1024

INDEX_FILE = "index.json"
VECTORS_FILE = "vectors.npy"
KEYS_FILE = "keys.json"
HNSW_FILE = "hnsw.faiss"
_FORMAT = 1


def faiss_available() -> bool:
    """Whether faiss imports (faiss-cpu installed)."""
    try:
        _import_faiss()
    except ConfigError:
        return False
    return True


def _import_faiss() -> Any:
    # faiss' loader logs at INFO each CPU variant it tries (the wheel dispatches at
    # run time); only its warnings say anything a user can act on.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "faiss is not installed: `pip install faiss-cpu`, or use backend='exact'",
            field="backend",
        ) from None
    return faiss


def as_unit_vectors(
    values: ArrayLike, dim: int, *, normalize: bool = False, field: str = "vectors"
) -> NDArray[np.float32]:
    """Checks and converts vectors to ``(N, dim)`` float32, L2-normalised.

    Args:
        values: ``(N, dim)`` or one ``(dim,)`` vector, any floating dtype.
        dim: The expected dimension.
        normalize: Divide each vector by its norm; otherwise a vector whose norm is
            not 1 (within :data:`NORM_TOLERANCE`) is an error.
        field: What to call the input in error messages.

    Raises:
        DataValidationError: On a wrong shape or dtype, NaN or infinity, a zero
            vector, or (without ``normalize``) a vector that is not normalised; the
            message names the first bad row.
    """
    a = np.asarray(values)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != dim:
        raise DataValidationError(
            f"expected shape (N, {dim}) or ({dim},), got {np.shape(values)}", field=field
        )
    if not np.issubdtype(a.dtype, np.floating):
        raise DataValidationError(f"expected floating-point vectors, got {a.dtype}", field=field)
    a = np.ascontiguousarray(a, dtype=np.float32)
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        raise DataValidationError(
            f"row {int(np.flatnonzero(~finite)[0])} holds NaN or infinity", field=field
        )
    norms = np.linalg.norm(a, axis=1)
    if (norms == 0).any():
        raise DataValidationError(
            f"row {int(np.flatnonzero(norms == 0)[0])} is the zero vector", field=field
        )
    if normalize:
        return np.ascontiguousarray(a / norms[:, None], dtype=np.float32)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataValidationError(
            f"row {i} has norm {norms[i]:.6f}, not 1: L2-normalise the embeddings "
            "(or create the index with normalize=True)",
            field=field,
        )
    return a


class _Rows:
    """Growable per-row arrays: the key id of each row and whether it is live."""

    def __init__(self) -> None:
        self.key = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.n = 0

    def append(self, key_ids: NDArray[np.int64]) -> None:
        need = self.n + key_ids.size
        if need > self.key.size:
            cap = max(need, 2 * self.key.size, 64)
            self.key = np.resize(self.key, cap)
            self.alive = np.resize(self.alive, cap)
        self.key[self.n : need] = key_ids
        self.alive[self.n : need] = True
        self.n = need


class _NumpyEngine:
    """Exact search by a NumPy matrix product (vectors kept in a growable array)."""

    kind = "numpy-exact"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self.ntotal = 0

    def add(self, vectors: NDArray[np.float32]) -> None:
        need = self.ntotal + len(vectors)
        if need > len(self._vecs):
            grown = np.zeros((max(need, 2 * len(self._vecs), 64), self.dim), dtype=np.float32)
            grown[: self.ntotal] = self._vecs[: self.ntotal]
            self._vecs = grown
        self._vecs[self.ntotal : need] = vectors
        self.ntotal = need

    def vectors(self) -> NDArray[np.float32]:
        return self._vecs[: self.ntotal]

    def search(
        self, queries: NDArray[np.float32], m: int, alive: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        sims = queries @ self._vecs[: self.ntotal].T
        if alive is not None:
            sims[:, ~alive] = -np.inf
        m = min(m, self.ntotal)
        if m < self.ntotal:
            rows = np.argpartition(-sims, m - 1, axis=1)[:, :m]
        else:
            rows = np.broadcast_to(np.arange(self.ntotal), sims.shape).copy()
        top = np.take_along_axis(sims, rows, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        rows = np.take_along_axis(rows, order, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        rows[~np.isfinite(top)] = -1
        return top, rows


class _FaissEngine:
    """faiss ``IndexFlatIP`` (exact) or ``IndexHNSWFlat`` over inner products."""

    def __init__(
        self, dim: int, *, hnsw: bool, m: int, ef_construction: int, ef_search: int
    ) -> None:
        faiss = _import_faiss()
        self.dim = dim
        self.hnsw = hnsw
        self.ef_search = ef_search
        if hnsw:
            self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
        else:
            self.index = faiss.IndexFlatIP(dim)
        # The live-row filter and the bitmap it reads (kept together: the selector
        # holds a raw pointer into the bitmap).
        self._filter: tuple[Any, NDArray[np.uint8]] | None = None

    @property
    def kind(self) -> str:
        return "faiss-hnsw" if self.hnsw else "faiss-flat"

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: NDArray[np.float32]) -> None:
        self.index.add(vectors)

    def vectors(self) -> NDArray[np.float32]:
        return self.index.reconstruct_n(0, self.index.ntotal)

    def set_alive(self, alive: NDArray[np.bool_] | None) -> None:
        """The live rows the search may return (``None``: all of them)."""
        if alive is None:
            self._filter = None
            return
        faiss = _import_faiss()
        bitmap = np.packbits(alive, bitorder="little")
        self._filter = (faiss.IDSelectorBitmap(alive.size, faiss.swig_ptr(bitmap)), bitmap)

    def search(
        self, queries: NDArray[np.float32], m: int, alive: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        faiss = _import_faiss()
        del alive  # set_alive() has built the filter
        live = self._filter  # one read: a concurrent set_alive() cannot free it mid-search
        if self.hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, m))
            if live is not None:
                params.sel = live[0]
        elif live is not None:
            params = faiss.SearchParameters(sel=live[0])
        else:
            params = None
        if len(queries) > _THREADED_QUERIES:
            return self.index.search(queries, m, params=params)
        # A few queries: one thread. faiss' OpenMP threads spin-wait at their
        # barriers, and on a machine whose cores are busy with other work (decoding,
        # embedding) a parallel flat scan of one query took 28 ms instead of 0.6 ms at
        # 10,000 vectors. The setting is per calling thread and restored after.
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.index.search(queries, m, params=params)
        finally:
            faiss.omp_set_num_threads(before)


class VectorIndex:
    """Cosine-similarity search over L2-normalised vectors, several per key.

    Searches may run in several threads at once; :meth:`add` and :meth:`remove`
    must not run while anything else uses the index (build a new index and swap
    it in, or hold a lock).

    Args:
        dim: Vector dimension (the embedder's ``dim``, 512 for OSNet).
        backend: ``faiss``, ``exact`` or ``auto`` (faiss when installed).
        normalize: Normalise vectors and queries that are not unit length;
            by default such input is an error (the embedder's output is unit length,
            so anything else is a bug upstream).
        hnsw_min: With faiss, live vectors from which an HNSW graph replaces the
            exact flat index.
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW candidate list while building.
        ef_search: HNSW candidate list while searching (raised to the number of
            rows fetched when that is larger).

    Raises:
        ConfigError: On an unknown backend, a bad dimension, or ``faiss`` asked
            for but not installed.
    """

    def __init__(
        self,
        dim: int,
        *,
        backend: Backend = "auto",
        normalize: bool = False,
        hnsw_min: int = HNSW_MIN_VECTORS,
        hnsw_m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ConfigError(f"dimension must be a positive integer, got {dim!r}", field="dim")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "exact"
        if backend == "faiss":
            _import_faiss()
        elif backend != "exact":
            raise ConfigError(
                f"unknown backend {backend!r}; use faiss, exact or auto", field="backend"
            )
        self.dim = int(dim)
        self.backend: Literal["faiss", "exact"] = backend
        self.normalize = normalize
        self.hnsw_min = hnsw_min
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._key_ids: dict[str, int] = {}
        self._key_names: list[str] = []
        self._key_rows: dict[int, list[int]] = {}
        self._rows = _Rows()
        self._n_alive = 0
        self._max_per_key = 0
        self._engine: _NumpyEngine | _FaissEngine = self._new_engine(0)

    # ------------------------------------------------------------------ state

    def __len__(self) -> int:
        """Live vectors (not keys; see :attr:`num_keys`)."""
        return self._n_alive

    def __contains__(self, key: object) -> bool:
        kid = self._key_ids.get(key) if isinstance(key, str) else None
        return kid is not None and kid in self._key_rows

    @property
    def num_keys(self) -> int:
        """Keys holding at least one vector."""
        return len(self._key_rows)

    @property
    def kind(self) -> str:
        """The search in use: ``numpy-exact``, ``faiss-flat`` or ``faiss-hnsw``."""
        return self._engine.kind

    def keys(self) -> list[str]:
        """The keys holding vectors, in order of first enrolment."""
        return [self._key_names[i] for i in sorted(self._key_rows)]

    def count(self, key: str) -> int:
        """Vectors held under ``key`` (0 when absent)."""
        i = self._key_ids.get(key)
        return 0 if i is None else len(self._key_rows.get(i, ()))

    def _new_engine(self, n_live: int) -> _NumpyEngine | _FaissEngine:
        if self.backend == "exact":
            return _NumpyEngine(self.dim)
        return _FaissEngine(
            self.dim,
            hnsw=n_live >= self.hnsw_min,
            m=self.hnsw_m,
            ef_construction=self.ef_construction,
            ef_search=self.ef_search,
        )

    def _refresh(self, touched: Iterable[int] | None = None) -> None:
        """Updates what searches rely on after rows change.

        Args:
            touched: Keys that gained vectors (an add: the largest count can only
                grow there); ``None`` after a removal (recounted over all keys).
        """
        if touched is None:
            self._max_per_key = max((len(r) for r in self._key_rows.values()), default=0)
        else:
            counts = (len(self._key_rows[k]) for k in touched)
            self._max_per_key = max(self._max_per_key, *counts, 0)
        if isinstance(self._engine, _FaissEngine):
            self._engine.set_alive(self._live_mask())

    def _live_mask(self) -> NDArray[np.bool_] | None:
        """Which rows are live (``None`` when all are)."""
        return None if self._n_alive == self._rows.n else self._rows.alive[: self._rows.n]

    def _rebuild(self) -> None:
        """Re-creates the engine from the live vectors (compacts, re-picks flat or HNSW)."""
        n = self._rows.n
        alive = self._rows.alive[:n].copy()
        vectors = self._engine.vectors()[alive] if n else np.zeros((0, self.dim), np.float32)
        keys = self._rows.key[:n][alive]
        log.debug("rebuilding the %s index from %d live vectors", self.kind, len(vectors))
        self._engine = self._new_engine(len(vectors))
        self._rows = _Rows()
        self._key_rows = {}
        self._n_alive = 0
        self._append(keys, vectors)

    def _key_id(self, key: str) -> int:
        kid = self._key_ids.get(key)
        if kid is None:
            kid = self._key_ids[key] = len(self._key_names)
            self._key_names.append(key)
        return kid

    def _append(self, key_ids: NDArray[np.int64], vectors: NDArray[np.float32] | None) -> None:
        """Registers rows for ``key_ids``; ``vectors`` None: the engine already holds them."""
        start = self._rows.n
        if vectors is not None and len(vectors):
            self._engine.add(vectors)
        self._rows.append(key_ids)
        for offset, k in enumerate(key_ids.tolist()):
            self._key_rows.setdefault(k, []).append(start + offset)
        self._n_alive += len(key_ids)
        self._refresh(touched=set(key_ids.tolist()))

    # ------------------------------------------------------------------ API

    def add(self, keys: Sequence[str], vectors: ArrayLike) -> None:
        """Adds one vector per key (a key may repeat, and may already be present).

        Args:
            keys: One non-empty string per vector.
            vectors: ``(N, dim)`` L2-normalised floats (or ``(dim,)`` with one key).

        Raises:
            DataValidationError: If the counts differ, a key is not a non-empty
                string, or a vector is malformed (see :func:`as_unit_vectors`).
        """
        if isinstance(keys, str):
            keys = [keys]
        vecs = as_unit_vectors(vectors, self.dim, normalize=self.normalize)
        if len(keys) != len(vecs):
            raise DataValidationError(
                f"{len(keys)} keys for {len(vecs)} vectors; give one key per vector",
                field="keys",
            )
        ids = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            if not isinstance(key, str) or not key:
                raise DataValidationError(
                    f"key {i} must be a non-empty string, got {key!r}", field="keys"
                )
        for i, key in enumerate(keys):
            ids[i] = self._key_id(key)
        self._append(ids, vecs)
        if (
            isinstance(self._engine, _FaissEngine)
            and not self._engine.hnsw
            and self._n_alive >= self.hnsw_min
        ):
            self._rebuild()

    def remove(self, keys: Iterable[str]) -> int:
        """Removes every vector of each key; unknown keys are ignored.

        Returns:
            The number of vectors removed.
        """
        if isinstance(keys, str):
            keys = [keys]
        removed = 0
        for key in keys:
            kid = self._key_ids.get(key)
            rows = self._key_rows.pop(kid, None) if kid is not None else None
            if not rows:
                continue
            self._rows.alive[rows] = False
            removed += len(rows)
        if not removed:
            return 0
        self._n_alive -= removed
        dead = self._rows.n - self._n_alive
        hnsw = isinstance(self._engine, _FaissEngine) and self._engine.hnsw
        if hnsw:
            limit = max(self._n_alive, _COMPACT_MIN_HNSW)
        else:
            limit = max(self._n_alive // 4, _COMPACT_MIN_FLAT)
        if dead > limit or self._n_alive == 0:
            self._rebuild()
        else:
            self._refresh()
        return removed

    def search(self, queries: ArrayLike, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` best keys of each query, best first, each key once with its best similarity.

        Args:
            queries: ``(Q, dim)`` L2-normalised floats, or one ``(dim,)`` query.
            k: Keys per query (fewer when the index holds fewer).

        Returns:
            One list per query of ``(key, cosine similarity)``.

        Raises:
            DataValidationError: On malformed queries or ``k < 1``.
        """
        if not isinstance(k, int | np.integer) or k < 1:
            raise DataValidationError(f"k must be a positive integer, got {k!r}", field="k")
        q = as_unit_vectors(queries, self.dim, normalize=self.normalize, field="queries")
        if self._n_alive == 0:
            return [[] for _ in range(len(q))]
        m = min(int(k) * self._max_per_key, self._n_alive)
        sims, rows = self._engine.search(q, m, self._live_mask())
        row_key = self._rows.key
        names = self._key_names
        out: list[list[tuple[str, float]]] = []
        for srow, rrow in zip(sims.tolist(), rows.tolist(), strict=True):
            seen: set[int] = set()
            hits: list[tuple[str, float]] = []
            for s, r in zip(srow, rrow, strict=True):
                if r < 0:
                    continue
                kid = int(row_key[r])
                if kid in seen:
                    continue
                seen.add(kid)
                hits.append((names[kid], float(s)))
                if len(hits) == k:
                    break
            out.append(hits)
        return out

    # ------------------------------------------------------------------ files

    def save(self, folder: str | PathLike[str]) -> Path:
        """Writes the index into ``folder``: ``index.json``, ``vectors.npy``,
        ``keys.json`` and, for an HNSW graph, ``hnsw.faiss`` (so loading skips the
        rebuild). Removed vectors are left out.
        """
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        if self._n_alive != self._rows.n:
            self._rebuild()  # drop tombstones: the files hold live vectors only
        vectors = self._engine.vectors() if self._rows.n else np.zeros((0, self.dim), np.float32)
        np.save(d / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))
        keys = [self._key_names[k] for k in self._rows.key[: self._rows.n].tolist()]
        (d / KEYS_FILE).write_text(json.dumps(keys) + "\n")
        hnsw = isinstance(self._engine, _FaissEngine) and self._engine.hnsw
        if hnsw:
            faiss = _import_faiss()
            faiss.write_index(self._engine.index, str(d / HNSW_FILE))
        else:
            (d / HNSW_FILE).unlink(missing_ok=True)
        meta = {
            "format": _FORMAT,
            "dim": self.dim,
            "backend": self.backend,
            "kind": self.kind,
            "normalize": self.normalize,
            "hnsw_min": self.hnsw_min,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "vectors": len(keys),
        }
        (d / INDEX_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, folder: str | PathLike[str], *, backend: Backend | None = None) -> VectorIndex:
        """Reads an index written by :meth:`save`.

        Args:
            folder: The folder.
            backend: Override the saved backend (``exact`` where faiss is missing);
                ``auto`` by default when the saved one was faiss and it is not installed.

        Raises:
            NotFoundError: If a file is missing.
            DataFormatError: If the files disagree with each other.
        """
        d = Path(folder)
        for name in (INDEX_FILE, VECTORS_FILE, KEYS_FILE):
            if not (d / name).is_file():
                raise NotFoundError(f"not a saved vector index: {name} is missing", path=d)
        try:
            meta = json.loads((d / INDEX_FILE).read_text())
            keys = json.loads((d / KEYS_FILE).read_text())
            vectors = np.load(d / VECTORS_FILE, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataFormatError(f"unreadable vector index ({exc})", path=d) from None
        if meta.get("format") != _FORMAT:
            raise DataFormatError(
                f"unknown format {meta.get('format')!r}", path=d / INDEX_FILE, field="format"
            )
        dim = int(meta["dim"])
        if vectors.ndim != 2 or vectors.shape != (len(keys), dim):
            raise DataFormatError(
                f"vectors of shape {vectors.shape} for {len(keys)} keys of dimension {dim}",
                path=d / VECTORS_FILE,
            )
        chosen = backend or meta["backend"]
        if backend is None and chosen == "faiss" and not faiss_available():
            chosen = "exact"
        index = cls(
            dim,
            backend=chosen,
            normalize=bool(meta.get("normalize", False)),
            hnsw_min=int(meta.get("hnsw_min", HNSW_MIN_VECTORS)),
            hnsw_m=int(meta.get("hnsw_m", HNSW_M)),
            ef_construction=int(meta.get("ef_construction", HNSW_EF_CONSTRUCTION)),
            ef_search=int(meta.get("ef_search", HNSW_EF_SEARCH)),
        )
        ids = np.array([index._key_id(str(key)) for key in keys], dtype=np.int64)
        index._engine = engine = index._new_engine(len(keys))
        graph = d / HNSW_FILE
        if isinstance(engine, _FaissEngine) and engine.hnsw and graph.is_file():
            faiss = _import_faiss()
            engine.index = faiss.read_index(str(graph))
            if engine.ntotal != len(keys) or engine.index.d != dim:
                raise DataFormatError(
                    f"graph holds {engine.ntotal} vectors of dimension {engine.index.d}, "
                    f"the keys {len(keys)} of dimension {dim}",
                    path=graph,
                )
            index._append(ids, None)
        else:
            index._append(ids, np.ascontiguousarray(vectors, dtype=np.float32))
        return index
