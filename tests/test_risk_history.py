"""History (in memory and SQL), outcomes and the per-rule report, and fusion with X-ray detections."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest

from cv.datasets.declarations import clean_declaration, generate_declarations
from cv.errors import NotFoundError
from cv.models.risk.declaration import normalize
from cv.models.risk.engine import Engine
from cv.models.risk.feedback import read_outcomes, rule_report, write_report
from cv.models.risk.fusion import fuse
from cv.models.risk.history import IN_CHUNK, MemoryHistory, Outcome, SqlHistory
from cv.models.risk.pack import DEFAULT_PACK, load_pack
from cv.records import Detection

PACK = load_pack(DEFAULT_PACK)


def test_sql_history_gives_the_same_aggregations_as_memory(tmp_path):
    frame = (
        generate_declarations(300, seed=11)
        .drop("planted")
        .with_columns(pl.col(pl.Date).cast(pl.String))
    )
    rows = [
        normalize({k: v for k, v in r.items() if v is not None}, rates=PACK.rates)
        for r in frame.iter_rows(named=True)
    ]
    memory, sql = MemoryHistory(), SqlHistory(f"sqlite:///{tmp_path / 'risk.db'}")
    memory.add_many(rows)
    sql.add_many(rows)
    for row in rows[::7]:
        assert memory.aggregates(row, PACK.aggregates) == sql.aggregates(row, PACK.aggregates)
    # re-adding a declaration replaces it rather than counting it twice
    sql.add(rows[0])
    assert sql.aggregates(rows[0], PACK.aggregates) == memory.aggregates(rows[0], PACK.aggregates)
    with_awb = next(r for r in rows if r["awb"] is not None)
    assert sql.find(awb=with_awb["awb"]) == with_awb["id"] == memory.find(awb=with_awb["awb"])
    # a new connection to the same file sees the same history
    again = SqlHistory(f"sqlite:///{tmp_path / 'risk.db'}")
    assert again.declaration(rows[1]["id"])["id"] == rows[1]["id"]


def test_anti_splitting_online_reads_the_history():
    engine = Engine(PACK)
    first = engine.decide(clean_declaration(id="A", awb="AWB-S", value=80, supplier="One"))
    second = engine.decide(clean_declaration(id="B", awb="AWB-S", value=80, supplier="Two"))
    assert first.fired == () and [f.id for f in second.fired] == ["split-same-awb"]
    # deciding A again counts B now, and counts A once
    assert [
        f.id
        for f in engine.decide(
            clean_declaration(id="A", awb="AWB-S", value=80, supplier="One")
        ).fired
    ] == ["split-same-awb"]


@pytest.mark.parametrize("history", ["memory", "sql"])
def test_outcomes_and_the_per_rule_report(tmp_path, history):
    store = MemoryHistory() if history == "memory" else SqlHistory("sqlite://")
    engine = Engine(PACK, history=store)
    engine.decide(clean_declaration("express", id="S1", pccc="P100000000001"))  # stolen code: red
    engine.decide(clean_declaration("express", id="S2", pccc="P100000000002", awb="AWB-2"))
    engine.decide(
        clean_declaration(
            "express",
            id="U1",
            hs_code="851712",
            description="phone",
            quantity=1,
            value=50,
            awb="AWB-3",
            pccc="P200000000003",
        )
    )
    engine.decide(clean_declaration(id="G1", awb="AWB-4", pccc="P200000000004"))
    engine.record_outcome("S1", found=True, what="goods for resale")
    engine.record_outcome("S2", found=False)
    engine.record_outcome("U1", found=True, what="undervalued invoice")
    with pytest.raises(NotFoundError):
        engine.record_outcome("nope", found=True)
    report = rule_report(
        store.decisions_frame(), store.outcomes_frame(), rule_ids=[r.id for r in PACK.rules]
    )
    by_rule = report.rules.rows_by_key("rule", named=True, unique=True)
    assert by_rule["pccc-stolen"] == {
        "hits": 2,
        "selected": 2,
        "inspected": 2,
        "finds": 1,
        "hit_rate": 0.5,
    }
    assert by_rule["undervaluation"]["hit_rate"] == 1.0
    assert (
        by_rule["traveller-perfume"]["hits"] == 0
        and by_rule["traveller-perfume"]["hit_rate"] is None
    )
    assert report.overall == {"inspected": 3, "finds": 2, "hit_rate": 2 / 3}
    md, js = write_report(report, tmp_path / "report.md")
    assert "| pccc-stolen | 2 | 2 | 2 | 1 | 50.0% |" in md.read_text(encoding="utf-8")
    assert js.exists()


@pytest.mark.parametrize("history", ["memory", "sql"])
def test_decisions_stored_in_bulk_replace_earlier_ones_as_one_by_one(history):
    store = MemoryHistory() if history == "memory" else SqlHistory("sqlite://")
    red = Engine(PACK).decide(
        clean_declaration("express", id="X", pccc="P100000000001"), remember=False
    )
    green = replace(red, lane="green", fired=(), reasons=("No rule fired: release",))
    first = [replace(red, declaration_id=f"D{i}") for i in range(2 * IN_CHUNK + 10)]
    store.record_decisions(first)
    # a later decision replaces an earlier one, in the same call or from an earlier call
    store.record_decisions(
        [
            replace(green, declaration_id="D0"),
            replace(green, declaration_id="N1"),
            replace(red, declaration_id="N1"),
        ]
    )
    assert store.decisions_frame().height == len(first) + 1
    assert store.decision("D0") == replace(green, declaration_id="D0")
    assert store.decision("N1") == replace(red, declaration_id="N1")
    assert store.decision(f"D{IN_CHUNK + 5}") == first[IN_CHUNK + 5]


def test_random_sample_compliance_rate():
    decisions = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "lane": ["red", "red", "green", "red"],
            "random": [True, True, False, True],
            "rules": ["", "", "", "x"],
        }
    )
    outcomes = pl.DataFrame(
        {
            "decision_id": ["a", "b", "b", "d"],
            "found": [False, False, True, False],
            "what": [None, None, "cash", None],
        }
    )
    report = rule_report(decisions, outcomes)
    # b's latest outcome counts: 3 random inspected, 1 find
    assert report.random == {
        "drawn": 3,
        "inspected": 3,
        "finds": 1,
        "compliance_rate": pytest.approx(2 / 3),
    }


def test_outcomes_csv_is_validated(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("decision_id,found,what\nA,yes,knife\nB,maybe,\n", encoding="utf-8")
    with pytest.raises(
        Exception, match=r"o.csv:3: found: found must be true or false, got 'maybe'"
    ):
        read_outcomes(path)


def det(category: str, score: float = 0.9) -> Detection:
    return Detection(box=(10.0, 10.0, 50.0, 50.0), category=category, class_id=0, score=score)


def test_unexplained_knife_raises_the_lane_and_explained_battery_does_not():
    engine = Engine(PACK)
    decision = engine.decide(clean_declaration(id="F1", awb="AWB-F1", description="cotton t-shirt"))
    row = engine.history.declaration("F1")
    fused = fuse(decision, row, [det("knife"), det("battery", 0.3)], config=PACK.fusion)
    assert decision.lane == "green" and fused.decision.lane == "red"
    assert fused.decision.reasons[-1] == (
        "X-ray: knife detected (0.90) that the declared goods ('cotton t-shirt', HS 610910) do not explain -> red"
    )
    assert fused.alert_priority == "high" and [d.category for d in fused.unexplained] == ["knife"]
    phone = engine.decide(
        clean_declaration(
            id="F2",
            awb="AWB-F2",
            hs_code="8517.12",
            description="mobile phone",
            value=120,
            quantity=1,
        )
    )
    fused = fuse(phone, engine.history.declaration("F2"), [det("battery")], config=PACK.fusion)
    assert fused.decision.lane == phone.lane and fused.unexplained == ()
    assert fused.alert_reasons[-1] == "battery explained by declared electronics"


def test_declaration_risk_raises_the_alert_priority_and_scans_link_by_awb_or_bag_tag():
    engine = Engine(PACK)
    engine.decide(clean_declaration("express", id="R1", awb="AWB-R1", pccc="P100000000001"))
    fused = engine.fuse_scan([det("laptop")], awb="AWB-R1")
    assert fused.decision.lane == "red"
    assert fused.alert_priority == "critical"  # laptop unexplained (high) + red declaration
    assert any(
        "Declaration R1 is red: The personal customs clearance code was reported stolen" in r
        for r in fused.alert_reasons
    )
    engine.decide(clean_declaration("traveller", id="T1", bag_tag="KE123"))
    bag = engine.fuse_scan([det("laptop"), det("gun")], bag_tag="KE123")
    assert [d.category for d in bag.unexplained] == ["gun"] and bag.decision.lane == "red"
    assert engine.history.decision("T1").lane == "red"  # the fused lane is stored
    with pytest.raises(NotFoundError, match="no declaration with AWB NOPE"):
        engine.fuse_scan([], awb="NOPE")
    assert engine.history.find(bag_tag="KE123") == "T1"
    assert isinstance(engine.history.decision("R1"), type(fused.decision))
    assert Outcome("R1", True).decision_id == "R1"
