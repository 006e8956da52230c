"""Each rule of the default Korean pack fires on a declaration that breaks it, and not on a clean one.

Every case is scored twice, online (one by one, with the history) and in
batch (polars), and both must fire exactly the rules expected.
"""

from __future__ import annotations

import pytest
from risk_helpers import PACK, clean, fired

from cv.models.risk.engine import Engine

CASES = {
    "list-over-deminimis": [clean(value=146)],  # 146 + 5 shipping = 151 > 150
    "list-over-deminimis-us": [clean(shipped_from="US", value=196)],  # 201 > 200
    "list-excluded-goods": [clean(hs_code="3004.90", description="cold medicine")],
    "list-perfume-over-60ml": [clean(perfume_ml=75)],
    "supplement-over-6-bottles": [
        clean("express", description="Vitamin D3", unit="Bottles", quantity=7)
    ],
    # two sellers' goods on one AWB (one seller on one day would also be a supplier-day split)
    "split-same-awb": [
        clean(id="A", awb="AWB-S", value=80),
        clean(id="B", awb="AWB-S", value=80, supplier="Osaka Shop"),
    ],
    "split-same-supplier-day": [
        clean(id="A", awb="AWB-1", value=80),
        clean(id="B", awb="AWB-2", value=80, arrival_date="2026-03-07"),
    ],
    "pccc-missing": [
        clean(pccc=None, pccc_owner_name=None, pccc_owner_phone=None, pccc_owner_postal=None)
    ],
    "pccc-format": [clean("express", pccc="P12345", pccc_owner_name=None)],
    "pccc-stolen": [clean("express", pccc="P100000000001")],
    "pccc-name-phone-mismatch": [clean(pccc_owner_phone="010-0000-0000")],
    "pccc-postal-mismatch": [clean(pccc_owner_postal="99999")],
    "pccc-expired": [clean(pccc_valid_to="2026-03-04")],
    "undervaluation": [
        clean("express", hs_code="851712", description="mobile phone", quantity=1, value=100)
    ],
    "stale-invoice": [clean(purchase_date="2025-12-01")],  # 94 days before arrival
    "traveller-over-allowance": [clean("traveller", value=801)],
    "traveller-alcohol": [
        clean("traveller", alcohol_litres=2.25),
        clean("traveller", id="T2", alcohol_value=560000, currency="KRW", value=300000),
    ],
    "traveller-perfume": [clean("traveller", perfume_ml=150)],
    "traveller-cigarettes": [clean("traveller", cigarettes=400)],
    "traveller-minor-alcohol-tobacco": [clean("traveller", traveller_age=17, cigarettes=20)],
    "drug-origin": [clean("express", origin="MM", shipped_from="TH")],
    "high-risk-route": [clean("express", route="TH-LA-KR")],
    "watched-consignee": [clean("express", pccc="P900000000001")],
    "watched-supplier": [clean(supplier="Grey Market Ltd")],
    "banned-ingredient": [
        clean("express", hs_code="0902", description="Slimming tea with SIBUTRAMINE")
    ],
    "controlled-commodity": [
        clean("general", hs_code="9303.20", description="air rifle", value=400)
    ],
}


def test_every_rule_has_a_case():
    assert set(CASES) | {"repeat-buyer"} == {r.id for r in PACK.rules}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_its_violation_only(rule_id):
    for got in fired(CASES[rule_id]):
        assert got == {rule_id}


@pytest.mark.parametrize("kind", ["list", "express", "general", "traveller"])
def test_clean_declarations_fire_nothing(kind):
    assert fired([clean(kind)]) == [set()]


def test_repeat_buyer_counts_thirty_days_up_to_arrival():
    days = [f"2026-03-{d:02d}" for d in range(1, 11)]
    records = [
        clean(
            id=f"R{i}",
            awb=f"AWB-R{i}",
            supplier=f"Shop {i}",
            arrival_date=d,
            purchase_date="2026-02-27",
        )
        for i, d in enumerate(days)
    ]
    got = fired(records)
    assert got[:9] == [set()] * 9 and got[9] == {"repeat-buyer"}
    # the same ten spread over 40 days: never ten inside one 30-day window
    spread = [
        dict(r, arrival_date=f"2026-{3 + i // 5:02d}-{1 + (i % 5) * 4:02d}")
        for i, r in enumerate(records)
    ]
    assert all(g == set() for g in fired(spread))


def test_boundaries_are_inclusive_as_the_rules_say():
    # 145 + 5 = 150.00 is within list clearance; shipped from the US the limit is 200.
    assert fired([clean(value=145)]) == [set()]
    assert fired([clean(shipped_from="US", value=195)]) == [set()]
    assert fired([clean(shipped_from="US", value=160)]) == [set()]
    # KRW is converted at the pack's rate: 208,400 KRW x 0.00072 = 150.05 USD
    assert fired([clean(value=208400, shipping=0, currency="KRW")]) == [{"list-over-deminimis"}]
    # six bottles are allowed
    assert fired([clean("express", description="vitamin C", unit="bottles", quantity=6)]) == [set()]
    # perfume 100 ml is the traveller allowance; postal codes are checked from 2 Feb 2026
    assert fired([clean("traveller", perfume_ml=100)]) == [set()]
    assert fired(
        [clean(pccc_owner_postal="99999", arrival_date="2026-02-01", purchase_date="2026-01-25")]
    ) == [set()]
    # a split whose parts are each above the de-minimis is caught by the value rule, not the split rule
    split = fired(
        [
            clean(id="A", awb="AWB-S", value=146),
            clean(id="B", awb="AWB-S", value=20, supplier="Osaka Shop"),
        ]
    )
    assert split == [{"list-over-deminimis"}, {"split-same-awb"}]


def test_decision_lists_reasons_score_and_lane():
    engine = Engine(PACK)
    d = engine.decide(clean("express", pccc="P100000000001", supplier="Grey Market Ltd"))
    assert [f.id for f in d.fired] == ["pccc-stolen", "watched-supplier"]
    assert d.score == 120 and d.lane == "red" and not d.random
    assert d.reasons[0].startswith(
        "[pccc-stolen] The personal customs clearance code was reported stolen"
    )
    assert d.reasons[-1] == "Score 120 reaches the red threshold (100)"
    assert engine.decide(clean(id="D2")).reasons == ("No rule fired: release",)
