"""Synthetic customs declarations with known, planted violations of the default Korean pack.

For tests, demos and benchmarks of the risk engine. Clean declarations
(express and e-commerce list clearances, general imports, travellers) are
drawn so that no rule of the default pack fires on them; a share of them are
then rewritten to break exactly one rule each (some violations need a group:
an AWB split into several declarations, the same buyer ten times in a month),
and the ``planted`` column names that rule. The output is deterministic for a
seed and vectorised (a million declarations in about a second).

:func:`corrupt` turns some values into the bad input a real feed carries
(non-numbers, negative values, unknown currencies, malformed dates, missing
ids) and says which row and field, to test error reporting.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from cv.errors import ConfigError

KIND_SHARES = {"list": 0.60, "express": 0.15, "general": 0.10, "traveller": 0.15}

# hs6, description, unit, unit price in USD (low, high), quantity (low, high)
SMALL_GOODS = (
    ("610910", "cotton t-shirt", "pcs", 8, 20, 1, 4),
    ("640411", "running shoes", "pairs", 30, 70, 1, 1),
    ("851830", "wireless earphones", "pcs", 25, 60, 1, 1),
    ("392690", "silicone phone case", "pcs", 3, 12, 1, 5),
    ("490199", "paperback books", "pcs", 8, 25, 1, 4),
    ("950300", "building block toy", "pcs", 10, 40, 1, 2),
    ("420222", "canvas tote bag", "pcs", 10, 35, 1, 2),
    ("691200", "ceramic mug", "pcs", 6, 18, 1, 4),
)
BULK_GOODS = (
    ("847130", "laptops", "pcs", 500, 900, 5, 50),
    ("851712", "mobile phones", "pcs", 250, 500, 10, 100),
    ("610910", "cotton t-shirts", "pcs", 8, 20, 100, 2000),
    ("940360", "wooden furniture", "pcs", 80, 300, 5, 40),
)
CLEAN_ORIGINS = ("CN", "US", "JP", "DE", "GB", "VN", "HK")
ORIGIN_SHARES = (0.45, 0.2, 0.1, 0.07, 0.05, 0.08, 0.05)
CURRENCY_OF = {
    "CN": "CNY",
    "US": "USD",
    "JP": "JPY",
    "DE": "EUR",
    "GB": "GBP",
    "VN": "USD",
    "HK": "HKD",
}
RATES = {
    "USD": 1.0,
    "KRW": 0.00072,
    "CNY": 0.138,
    "JPY": 0.0067,
    "EUR": 1.08,
    "HKD": 0.128,
    "GBP": 1.27,
}
"""The default pack's rates (models/risk/packs/kr/rates.csv), to draw values in USD."""
SUPPLIERS = tuple(
    f"{p} {s}"
    for p in ("Shenzhen", "Yiwu", "Tokyo", "Berlin", "London", "Hanoi", "Austin")
    for s in ("Trading", "Goods", "Mart", "Direct", "Outlet")
)
FAMILY = ("KIM", "LEE", "PARK", "CHOI", "JUNG", "KANG", "CHO", "YOON", "JANG", "LIM")
GIVEN = (
    "MINJI",
    "SEOYEON",
    "JIHOON",
    "HYUNWOO",
    "SUBIN",
    "YEJIN",
    "DONGHYUN",
    "HAEUN",
    "JUNHO",
    "SORA",
)

VIOLATIONS = (
    "list-over-deminimis",
    "list-over-deminimis-us",
    "list-excluded-goods",
    "list-perfume-over-60ml",
    "supplement-over-6-bottles",
    "split-same-awb",
    "split-same-supplier-day",
    "repeat-buyer",
    "pccc-missing",
    "pccc-format",
    "pccc-stolen",
    "pccc-name-phone-mismatch",
    "pccc-postal-mismatch",
    "pccc-expired",
    "undervaluation",
    "stale-invoice",
    "traveller-over-allowance",
    "traveller-alcohol",
    "traveller-perfume",
    "traveller-cigarettes",
    "traveller-minor-alcohol-tobacco",
    "drug-origin",
    "high-risk-route",
    "watched-consignee",
    "watched-supplier",
    "banned-ingredient",
    "controlled-commodity",
)
"""Every violation the generator plants: each is the id of the rule it breaks."""

COLUMNS = (
    "id", "kind", "awb", "bag_tag", "flight", "consignee_name", "consignee_phone",
    "consignee_postal", "pccc", "pccc_owner_name", "pccc_owner_phone", "pccc_owner_postal",
    "pccc_valid_to", "supplier", "platform", "origin", "shipped_from", "route", "hs_code",
    "description", "quantity", "unit", "value", "currency", "shipping", "sales_tax",
    "purchase_date", "arrival_date", "traveller_age", "alcohol_litres", "alcohol_value",
    "perfume_ml", "cigarettes",
)  # fmt: skip
"""The declaration fields, in the risk engine's schema order (cv.models.risk.declaration.FIELDS;
a test keeps the two equal, since datasets may not import models)."""

_GROUP_SIZE = {"split-same-awb": 2, "split-same-supplier-day": 2, "repeat-buyer": 11}
_EPOCH = date(1970, 1, 1).toordinal()


def generate_declarations(
    n: int,
    *,
    seed: int = 0,
    violation_rate: float = 0.05,
    start: date = date(2026, 1, 1),
    days: int = 180,
) -> pl.DataFrame:
    """Draws ``n`` declarations, ``violation_rate`` of them rewritten to break one rule.

    Args:
        n: Number of declarations.
        seed: Seed of the generator.
        violation_rate: Share of declarations with a planted violation (groups
            such as split shipments count every member).
        start: First arrival date.
        days: Arrival dates spread over this many days.

    Returns:
        One row per declaration: every declaration field (typed: text,
        Float64, Date) plus ``planted`` (the rule id broken, or null).
    """
    rng = np.random.default_rng(seed)
    kinds = np.array(list(KIND_SHARES))
    kind = kinds[rng.choice(len(kinds), n, p=list(KIND_SHARES.values()))]
    arrival = (start.toordinal() - _EPOCH) + rng.integers(0, days, n)
    purchase = arrival - rng.integers(1, 30, n)
    origin_idx = rng.choice(len(CLEAN_ORIGINS), n, p=ORIGIN_SHARES)
    origin = np.array(CLEAN_ORIGINS, dtype=object)[origin_idx]
    is_traveller = kind == "traveller"
    is_general = kind == "general"

    small = rng.integers(0, len(SMALL_GOODS), n)
    bulk = rng.integers(0, len(BULK_GOODS), n)
    fields = ("hs", "desc", "unit", "plo", "phi", "qlo", "qhi")
    table_small = {k: np.array([g[i] for g in SMALL_GOODS]) for i, k in enumerate(fields)}
    table_bulk = {k: np.array([g[i] for g in BULK_GOODS]) for i, k in enumerate(fields)}

    def pick(key: str) -> np.ndarray:
        return np.where(is_general, table_bulk[key][bulk], table_small[key][small])

    hs, desc, unit = (
        pick("hs").astype(object),
        pick("desc").astype(object),
        pick("unit").astype(object),
    )
    price = rng.uniform(pick("plo").astype(float), pick("phi").astype(float))
    qty = np.floor(rng.uniform(pick("qlo").astype(float), pick("qhi").astype(float) + 1)).astype(
        float
    )
    usd_value = np.round(price * qty, 2)
    usd_shipping = np.where(
        is_general, np.round(rng.uniform(100, 2000, n), 2), np.round(rng.uniform(0, 10, n), 2)
    )

    names_of_currency = list(RATES)
    origin_currency = np.array([names_of_currency.index(CURRENCY_OF[o]) for o in CLEAN_ORIGINS])
    cur_idx = origin_currency[origin_idx]
    # Travellers: duty-free purchases in USD or KRW, alcohol, perfume and cigarettes within allowances.
    t_usd = np.round(rng.uniform(0, 700, n), 2)
    usd_value = np.where(is_traveller, t_usd, usd_value)
    usd_shipping = np.where(is_traveller, 0.0, usd_shipping)
    traveller_cur = np.where(
        rng.random(n) < 0.5, names_of_currency.index("USD"), names_of_currency.index("KRW")
    )
    cur_idx = np.where(is_traveller, traveller_cur, cur_idx)
    currency = np.array(names_of_currency, dtype=object)[cur_idx]
    rate = np.array(list(RATES.values()))[cur_idx]
    decimals_zero = (cur_idx == names_of_currency.index("KRW")) | (
        cur_idx == names_of_currency.index("JPY")
    )
    value = np.where(decimals_zero, np.round(usd_value / rate), np.round(usd_value / rate, 2))
    shipping = np.where(
        decimals_zero, np.round(usd_shipping / rate), np.round(usd_shipping / rate, 2)
    )
    # The rounding above may move a list item's total by a cent or two; 130 + 10 leaves room under 150.

    has_alcohol = is_traveller & (rng.random(n) < 0.3)
    alcohol_l = np.where(has_alcohol, rng.choice([0.7, 0.75, 1.0, 1.5], n), np.nan)
    alcohol_usd = np.where(has_alcohol, np.round(rng.uniform(30, 300, n), 2), np.nan)
    alcohol_value = np.where(
        decimals_zero, np.round(alcohol_usd / rate), np.round(alcohol_usd / rate, 2)
    )
    perfume = np.where(
        is_traveller & (rng.random(n) < 0.2), rng.choice([30.0, 50.0, 75.0, 100.0], n), np.nan
    )
    cigarettes = np.where(
        is_traveller & (rng.random(n) < 0.2), rng.choice([20.0, 200.0], n), np.nan
    )
    age = np.where(is_traveller, rng.integers(19, 80, n).astype(float), np.nan)

    name_idx = rng.integers(0, len(FAMILY) * len(GIVEN), n)
    names = np.array([f"{f} {g}" for f in FAMILY for g in GIVEN], dtype=object)[name_idx]
    phone = np.char.add(
        "010-",
        np.char.add(
            np.char.zfill(rng.integers(0, 10000, n).astype(str), 4),
            np.char.add("-", np.char.zfill(rng.integers(0, 10000, n).astype(str), 4)),
        ),
    )
    postal = np.char.zfill(rng.integers(1000, 64000, n).astype(str), 5)
    idx = np.arange(n)
    pccc_on = ~is_traveller
    cols: dict[str, np.ndarray] = {
        "id": np.char.add("D", np.char.zfill((idx + 1).astype(str), 9)).astype(object),
        "kind": kind.astype(object),
        "awb": np.where(
            is_traveller, None, np.char.add("AWB", np.char.zfill((idx + 1).astype(str), 10))
        ).astype(object),
        "bag_tag": np.where(
            is_traveller, np.char.add("KE", np.char.zfill((idx + 1).astype(str), 8)), None
        ).astype(object),
        "flight": np.where(
            is_traveller, "KE" + np.char.zfill(rng.integers(1, 999, n).astype(str), 3), None
        ).astype(object),
        "consignee_name": names,
        "consignee_phone": phone.astype(object),
        "consignee_postal": postal.astype(object),
        "pccc": np.where(pccc_on, np.char.add("P", (200000000000 + idx).astype(str)), None).astype(
            object
        ),
        "pccc_owner_name": np.where(pccc_on, names, None).astype(object),
        "pccc_owner_phone": np.where(pccc_on, phone, None).astype(object),
        "pccc_owner_postal": np.where(pccc_on, postal, None).astype(object),
        "supplier": np.where(
            is_traveller,
            None,
            np.array(SUPPLIERS, dtype=object)[rng.integers(0, len(SUPPLIERS), n)],
        ).astype(object),
        "platform": np.where(
            kind == "list",
            np.array(["AliExpress", "Amazon", "Rakuten", "Temu", "eBay"], dtype=object)[
                rng.integers(0, 5, n)
            ],
            None,
        ).astype(object),
        "origin": origin.astype(object),
        "shipped_from": origin.astype(object),
        "route": np.char.add(origin.astype(str), "-KR").astype(object),
        "hs_code": np.where(is_traveller, None, hs).astype(object),
        "description": np.where(is_traveller, "personal purchases", desc).astype(object),
        "quantity": np.where(is_traveller, np.nan, qty),
        "unit": np.where(is_traveller, None, unit).astype(object),
        "value": value,
        "currency": currency,
        "shipping": np.where(is_traveller, np.nan, shipping),
        "sales_tax": np.full(n, np.nan),
        "traveller_age": age,
        "alcohol_litres": alcohol_l,
        "alcohol_value": np.where(has_alcohol, alcohol_value, np.nan),
        "perfume_ml": perfume,
        "cigarettes": cigarettes,
    }
    days_cols = {
        "purchase_date": np.where(is_traveller, -1, purchase),
        "pccc_valid_to": np.where(pccc_on, arrival + rng.integers(30, 365, n), -1),
        "arrival_date": arrival,
    }
    planted = np.full(n, None, dtype=object)
    _plant(cols, days_cols, planted, rng=rng, rate=violation_rate)

    frame = pl.DataFrame([_series(k, v) for k, v in cols.items()])
    date_series = []
    for k, v in days_cols.items():
        days_since = pl.Series(k, v, dtype=pl.Int32)
        date_series.append(days_since.set(days_since < 0, None).cast(pl.Date))  # -1 marks no date
    frame = frame.with_columns(*date_series, _series("planted", planted))
    return frame.select([*COLUMNS, "planted"])


def _series(name: str, values: np.ndarray) -> pl.Series:
    if values.dtype != object:
        return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)
    # Through a fixed-width text array: fast, and empty text stands for a missing value.
    text = np.where(np.equal(values, None), "", values).astype(str)
    series = pl.Series(name, text, dtype=pl.String)
    return series.set(series == "", None) if (text == "").any() else series


def _plant(
    cols: dict[str, np.ndarray],
    days: dict[str, np.ndarray],
    planted: np.ndarray,
    *,
    rng: np.random.Generator,
    rate: float,
) -> None:
    """Rewrites a ``rate`` share of the rows to break one rule each (in place)."""
    n = len(planted)
    chosen = np.flatnonzero(rng.random(n) < rate)
    # A group violation rewrites several rows: draw it less often so each kind plants about as many rows.
    weights = np.array([1.0 / _GROUP_SIZE.get(v, 1) for v in VIOLATIONS])
    kinds = rng.choice(len(VIOLATIONS), len(chosen), p=weights / weights.sum())
    used = np.zeros(n, dtype=bool)
    group_counter = defaultdict(int)
    for i, v in zip(chosen.tolist(), kinds.tolist(), strict=True):
        name = VIOLATIONS[v]
        size = _GROUP_SIZE.get(name, 1)
        members = list(range(i, min(i + size, n)))
        if len(members) < size or used[members].any():
            continue
        used[members] = True
        group_counter[name] += 1
        for m in members:
            planted[m] = name
            _clean_small(
                cols, days, m, kind="traveller" if name.startswith("traveller") else "list"
            )
        _violate(name, members, cols, days, rng=rng, group=group_counter[name])


def _set(cols: dict[str, np.ndarray], row: int, **values: object) -> None:
    for key, value in values.items():
        cols[key][row] = np.nan if value is None and cols[key].dtype != object else value


def _clean_small(
    cols: dict[str, np.ndarray], days: dict[str, np.ndarray], row: int, *, kind: str
) -> None:
    """Makes a row a plain, clean declaration of its kind before the violation is written."""
    if kind == "traveller":
        _set(
            cols,
            row,
            kind="traveller",
            awb=None,
            pccc=None,
            pccc_owner_name=None,
            pccc_owner_phone=None,
            pccc_owner_postal=None,
            supplier=None,
            platform=None,
            hs_code=None,
            description="personal purchases",
            quantity=None,
            unit=None,
            value=300.0,
            currency="USD",
            shipping=None,
            traveller_age=40.0,
            alcohol_litres=None,
            alcohol_value=None,
            perfume_ml=None,
            cigarettes=None,
            origin="JP",
            shipped_from="JP",
            route="JP-KR",
            bag_tag=f"KE{row + 1:08d}",
            flight="KE001",
        )
        days["purchase_date"][row] = -1
        days["pccc_valid_to"][row] = -1
        return
    name = cols["consignee_name"][row]
    _set(
        cols,
        row,
        kind=kind,
        awb=f"AWB{row + 1:010d}",
        bag_tag=None,
        flight=None,
        pccc=f"P{200000000000 + row}",
        pccc_owner_name=name,
        pccc_owner_phone=cols["consignee_phone"][row],
        pccc_owner_postal=cols["consignee_postal"][row],
        supplier="Tokyo Goods",
        platform="Rakuten",
        origin="JP",
        shipped_from="JP",
        route="JP-KR",
        hs_code="610910",
        description="cotton t-shirt",
        quantity=2.0,
        unit="pcs",
        value=30.0,
        currency="USD",
        shipping=5.0,
        sales_tax=None,
        traveller_age=None,
        alcohol_litres=None,
        alcohol_value=None,
        perfume_ml=None,
        cigarettes=None,
    )
    days["purchase_date"][row] = days["arrival_date"][row] - 5
    days["pccc_valid_to"][row] = days["arrival_date"][row] + 200


def _violate(
    name: str,
    rows: list[int],
    cols: dict[str, np.ndarray],
    days: dict[str, np.ndarray],
    *,
    rng: np.random.Generator,
    group: int,
) -> None:
    r = rows[0]
    feb2 = date(2026, 2, 10).toordinal() - _EPOCH
    if name == "list-over-deminimis":
        _set(cols, r, value=float(rng.integers(160, 400)))
    elif name == "list-over-deminimis-us":
        _set(
            cols,
            r,
            origin="US",
            shipped_from="US",
            route="US-KR",
            value=float(rng.integers(210, 400)),
        )
    elif name == "list-excluded-goods":
        _set(
            cols,
            r,
            hs_code="300490",
            description="cold medicine tablets",
            unit="boxes",
            quantity=2.0,
        )
    elif name == "list-perfume-over-60ml":
        _set(
            cols,
            r,
            hs_code="330300",
            description="eau de parfum",
            unit="ml",
            quantity=100.0,
            value=60.0,
        )
    elif name == "supplement-over-6-bottles":
        _set(
            cols,
            r,
            kind="express",
            hs_code="210690",
            description="omega-3 fish oil",
            unit="bottles",
            quantity=float(rng.integers(7, 13)),
            value=120.0,
        )
    elif name == "split-same-awb":
        awb = f"SPLIT{group:08d}"
        for m in rows:
            _set(cols, m, awb=awb, value=100.0, shipping=0.0)
    elif name == "split-same-supplier-day":
        shared = cols["pccc"][r]
        for m in rows:
            _set(
                cols,
                m,
                supplier="Berlin Direct",
                value=100.0,
                shipping=0.0,
                pccc=shared,
                pccc_owner_name=cols["consignee_name"][r],
                consignee_name=cols["consignee_name"][r],
                consignee_phone=cols["consignee_phone"][r],
                pccc_owner_phone=cols["consignee_phone"][r],
                consignee_postal=cols["consignee_postal"][r],
                pccc_owner_postal=cols["consignee_postal"][r],
            )
            days["purchase_date"][m] = days["purchase_date"][r]
            days["arrival_date"][m] = days["arrival_date"][r]
            days["pccc_valid_to"][m] = days["pccc_valid_to"][r]
    elif name == "repeat-buyer":
        shared = cols["pccc"][r]
        for k, m in enumerate(rows):
            _set(
                cols,
                m,
                pccc=shared,
                consignee_name=cols["consignee_name"][r],
                pccc_owner_name=cols["consignee_name"][r],
                consignee_phone=cols["consignee_phone"][r],
                pccc_owner_phone=cols["consignee_phone"][r],
                consignee_postal=cols["consignee_postal"][r],
                pccc_owner_postal=cols["consignee_postal"][r],
                supplier=SUPPLIERS[k % len(SUPPLIERS)],
                value=20.0,
            )
            # all arrive the same day, so each of the eleven sees eleven in its 30-day window
            days["arrival_date"][m] = days["arrival_date"][r]
            days["purchase_date"][m] = days["arrival_date"][m] - 3 - k
            days["pccc_valid_to"][m] = days["arrival_date"][m] + 200
    elif name == "pccc-missing":
        _set(
            cols,
            r,
            pccc=None,
            pccc_owner_name=None,
            pccc_owner_phone=None,
            pccc_owner_postal=None,
            consignee_name=f"{cols['consignee_name'][r]} {r}",
        )
        days["pccc_valid_to"][r] = -1
    elif name == "pccc-format":
        _set(cols, r, pccc=f"P{r % 100000:05d}", kind="express")
    elif name == "pccc-stolen":
        _set(
            cols,
            r,
            pccc=f"P10000000000{1 + r % 5}",
            kind="express",
            supplier=f"Stolen-code seller {r}",
        )
    elif name == "pccc-name-phone-mismatch":
        _set(cols, r, pccc_owner_phone="010-0000-0000")
    elif name == "pccc-postal-mismatch":
        _set(cols, r, pccc_owner_postal="99999")
        days["arrival_date"][r] = max(days["arrival_date"][r], feb2)
        days["purchase_date"][r] = days["arrival_date"][r] - 5
        days["pccc_valid_to"][r] = days["arrival_date"][r] + 200
    elif name == "pccc-expired":
        days["pccc_valid_to"][r] = days["arrival_date"][r] - int(rng.integers(1, 60))
    elif name == "undervaluation":
        _set(
            cols,
            r,
            kind="express",
            hs_code="851712",
            description="mobile phone",
            unit="pcs",
            quantity=1.0,
            value=float(rng.integers(20, 90)),
        )
    elif name == "stale-invoice":
        days["purchase_date"][r] = days["arrival_date"][r] - int(rng.integers(100, 200))
    elif name == "traveller-over-allowance":
        _set(cols, r, value=float(rng.integers(900, 3000)))
    elif name == "traveller-alcohol":
        if rng.random() < 0.5:
            _set(cols, r, alcohol_litres=float(rng.choice([2.25, 3.0, 4.5])), alcohol_value=200.0)
        else:
            _set(cols, r, alcohol_litres=1.5, alcohol_value=float(rng.integers(450, 900)))
    elif name == "traveller-perfume":
        _set(cols, r, perfume_ml=float(rng.choice([150.0, 200.0, 300.0])))
    elif name == "traveller-cigarettes":
        _set(cols, r, cigarettes=float(rng.choice([400.0, 600.0, 1000.0])))
    elif name == "traveller-minor-alcohol-tobacco":
        _set(cols, r, traveller_age=float(rng.integers(12, 19)), cigarettes=20.0)
    elif name == "drug-origin":
        country = str(rng.choice(["MM", "LA", "CO", "MX"]))
        _set(cols, r, origin=country, shipped_from=country, route=f"{country}-KR", currency="USD")
    elif name == "high-risk-route":
        _set(cols, r, origin="TH", shipped_from="TH", route="TH-LA-KR")
    elif name == "watched-consignee":
        _set(cols, r, pccc=f"P90000000000{1 + r % 2}", kind="express")
    elif name == "watched-supplier":
        _set(cols, r, supplier="Grey Market Ltd")
    elif name == "banned-ingredient":
        _set(
            cols,
            r,
            kind="express",
            hs_code="210690",
            description="slimming capsules with sibutramine",
            unit="boxes",
            quantity=1.0,
            value=40.0,
        )
    elif name == "controlled-commodity":
        _set(
            cols,
            r,
            kind="general",
            hs_code="930320",
            description="air rifle",
            unit="pcs",
            quantity=1.0,
            value=400.0,
        )


CORRUPTIONS = (
    ("value", "abc", "not a number"),
    ("value", "-5", "negative value"),
    ("currency", "XYZ", "unknown currency"),
    ("arrival_date", "2026-13-45", "malformed date"),
    ("purchase_date", "yesterday", "malformed date"),
    ("quantity", "1e400", "out of range"),
    ("kind", "parcel", "unknown kind"),
    ("id", None, "missing declaration id"),
)
"""(field, bad value, what the error message says) planted by :func:`corrupt`."""


def corrupt(
    frame: pl.DataFrame, *, rate: float, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Replaces one value in a ``rate`` share of the rows with bad input.

    Returns:
        The frame with every field as text (as a CSV feed would carry it) and
        the truth: ``row`` (1-based), ``field``, ``message`` (a fragment of the
        error message expected).
    """
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(frame.height) < rate)
    picks = rng.integers(0, len(CORRUPTIONS), len(rows))
    text = frame.with_columns(
        [pl.col(c).cast(pl.String) for c in frame.columns if frame.schema[c] != pl.String]
    )
    by_field: dict[str, tuple[list[int], list[str | None]]] = defaultdict(lambda: ([], []))
    truth = []
    for r, p in zip(rows.tolist(), picks.tolist(), strict=True):
        field, bad, message = CORRUPTIONS[p]
        by_field[field][0].append(r)
        by_field[field][1].append(bad)
        truth.append((r + 1, field, message))
    columns = []
    for field, (idx, values) in by_field.items():
        series = text.get_column(field).clone()
        series = series.scatter(idx, pl.Series(values, dtype=pl.String))
        columns.append(series)
    if columns:
        text = text.with_columns(columns)
    return text, pl.DataFrame(
        truth, schema={"row": pl.Int64, "field": pl.String, "message": pl.String}, orient="row"
    )


def write_declarations(frame: pl.DataFrame, path: str | Path) -> tuple[Path, Path | None]:
    """Writes declarations (CSV, Parquet or JSON lines, by suffix) and their truth file.

    The ``planted`` column goes to ``NAME.truth.csv`` beside the file (id,
    planted), so the declarations file holds declaration fields only.

    Returns:
        The declarations path and the truth path (None without ``planted``).
    """
    path = Path(path)
    truth_path = None
    if "planted" in frame.columns:
        truth_path = path.with_name(path.stem + ".truth.csv")
        write_frame(frame.select("id", "planted"), truth_path)
        frame = frame.drop("planted")
    write_frame(frame, path)
    return path, truth_path


def clean_declaration(
    kind: str = "list", *, id: str = "D1", **changes: object
) -> dict[str, object]:
    """One hand-written declaration of ``kind`` that no default-pack rule fires on, with ``changes``.

    Args:
        kind: ``list``, ``express``, ``general`` or ``traveller``.
        id: Its id.
        changes: Fields to set (None removes a field).

    Returns:
        A record as the online engine receives it (text, numbers, ISO dates).
    """
    if kind == "traveller":
        record: dict[str, object] = {
            "kind": "traveller",
            "bag_tag": "KE00000001",
            "flight": "KE704",
            "consignee_name": "LEE SORA",
            "origin": "JP",
            "description": "personal purchases",
            "value": 300,
            "currency": "USD",
            "traveller_age": 40,
            "arrival_date": "2026-03-05",
        }
    else:
        record = {
            "kind": kind,
            "awb": "AWB0000000001",
            "consignee_name": "KIM MINJI",
            "consignee_phone": "010-1234-5678",
            "consignee_postal": "06236",
            "pccc": "P200000000001",
            "pccc_owner_name": "KIM MINJI",
            "pccc_owner_phone": "010-1234-5678",
            "pccc_owner_postal": "06236",
            "pccc_valid_to": "2026-12-31",
            "supplier": "Tokyo Goods",
            "platform": "Rakuten",
            "origin": "JP",
            "shipped_from": "JP",
            "route": "JP-KR",
            "hs_code": "6109.10",
            "description": "cotton t-shirt",
            "quantity": 2,
            "unit": "pcs",
            "value": 30,
            "currency": "USD",
            "shipping": 5,
            "purchase_date": "2026-03-01",
            "arrival_date": "2026-03-05",
        }
        if kind == "general":
            record.update(
                hs_code="8471.30", description="laptops", quantity=20, value=12000, shipping=400
            )
    record["id"] = id
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def write_frame(frame: pl.DataFrame, path: str | Path) -> Path:
    """Writes a frame as CSV, Parquet or JSON lines, by the path's suffix.

    Raises:
        ConfigError: For another suffix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        frame.write_ndjson(path)
    else:
        raise ConfigError("write .csv, .parquet or .jsonl", path=path)
    return path
