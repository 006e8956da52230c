"""The default pack and declaration normalisation, online and in batch.

US anti-splitting, the clearance-code owner check (missing values, phone formats,
lower-case codes), field lengths the history's SQL columns hold, codes that must be
text, and fusion keywords for plurals and compound words.
"""

from __future__ import annotations

import json

import pg_helpers
import polars as pl
import pytest
from risk_helpers import PACK, clean, fired, frame_of

from cv.models.risk.batch import expand, read_declarations, score_file, score_frame
from cv.models.risk.declaration import (
    MAX_LENGTH,
    DeclarationError,
    normalize,
    normalize_frame,
)
from cv.models.risk.engine import Engine
from cv.models.risk.fusion import explained_classes, fuse
from cv.models.risk.history import SqlHistory
from cv.records import Detection

# --------------------------------------------------------------------------- 1. US splitting


def test_goods_shipped_from_the_us_are_summed_against_the_usd_200_de_minimis():
    us = dict(shipped_from="US", origin="US", route="US-KR")
    # two USD 180 items (175 + 5 shipping) from the US: each within 200, together 360
    same_awb = [
        clean(id="A", awb="AWB-US", value=175, supplier="Shop A", **us),
        clean(id="B", awb="AWB-US", value=175, supplier="Shop B", **us),
    ]
    assert fired(same_awb) == [{"split-same-awb"}] * 2
    same_day = [
        clean(id="A", awb="AWB-1", value=175, **us),
        clean(id="B", awb="AWB-2", value=175, **us),
    ]
    assert fired(same_day) == [{"split-same-supplier-day"}] * 2
    # USD 100 + 100 = 200 from the US is within the de-minimis; from Japan it is over 150
    pair = [
        clean(id="A", awb="AWB-S", value=95, supplier="Shop A"),
        clean(id="B", awb="AWB-S", value=95, supplier="Shop B"),
    ]
    assert fired([dict(r, **us) for r in pair]) == [set(), set()]
    assert fired(pair) == [{"split-same-awb"}] * 2
    # a US part over USD 200 is the value rule's, not a split
    over = [
        clean(id="A", awb="AWB-S", value=196, supplier="Shop A", **us),
        clean(id="B", awb="AWB-S", value=20, supplier="Shop B", **us),
    ]
    assert fired(over) == [{"list-over-deminimis-us"}, {"split-same-awb"}]


def test_split_reasons_name_both_limits():
    engine = Engine(PACK)
    us = dict(shipped_from="US", origin="US", route="US-KR", awb="AWB-US")
    engine.decide(clean(id="A", value=175, supplier="Shop A", **us))
    d = engine.decide(clean(id="B", value=175, supplier="Shop B", **us))
    assert d.lane == "yellow" and [f.id for f in d.fired] == ["split-same-awb"]
    assert "USD 200 shipped from the US" in d.reasons[0]


# --------------------------------------------------------------------------- 2. PCCC owner


def test_a_phone_or_postal_code_left_out_is_a_mismatch():
    assert fired([clean(consignee_phone=None)]) == [{"pccc-name-phone-mismatch"}]
    assert fired([clean(consignee_name=None)]) == [{"pccc-name-phone-mismatch"}]
    assert fired([clean(consignee_postal=None)]) == [{"pccc-postal-mismatch"}]
    # nothing registered for the owner: nothing to compare
    registry_empty = dict(pccc_owner_name=None, pccc_owner_phone=None, pccc_owner_postal=None)
    assert fired([clean(consignee_phone=None, consignee_postal=None, **registry_empty)]) == [set()]
    d = Engine(PACK).decide(clean(consignee_phone=None))
    assert "missing" in d.reasons[0]
    d = Engine(PACK).decide(clean(consignee_postal=None))
    assert "missing" in d.reasons[0]


def test_phones_are_compared_as_digits():
    same = [
        clean(id="A", consignee_phone="01012345678"),
        clean(id="B", awb="AWB-B", supplier="B", consignee_phone="010 1234 5678"),
        clean(id="C", awb="AWB-C", supplier="C", consignee_phone="(010) 1234-5678"),
        clean(id="D", awb="AWB-D", supplier="D", pccc_owner_phone="010.1234.5678"),
    ]
    assert fired(same) == [set()] * 4
    assert fired([clean(consignee_phone="010-1234-5679")]) == [{"pccc-name-phone-mismatch"}]
    # a phone with no digits at all is no phone: missing
    assert fired([clean(consignee_phone="n/a")]) == [{"pccc-name-phone-mismatch"}]


@pytest.mark.parametrize(
    "phone",
    [
        "+82 10-1234-5678",
        "+821012345678",
        "+82 (0)10 1234 5678",
        "0082-10-1234-5678",
        "00821012345678",
    ],
)
def test_a_korean_phone_in_international_form_matches_it_dialled_at_home(phone):
    # the registry holds 010-1234-5678: +82 / 0082 is Korea's code, the trunk 0 comes back
    assert fired([clean(consignee_phone=phone)]) == [set()]
    assert fired([clean(pccc_owner_phone=phone, consignee_phone="01012345678")]) == [set()]
    assert normalize(clean(consignee_phone=phone), rates=PACK.rates)["consignee_phone"] == (
        "01012345678"
    )


def test_other_international_forms_keep_their_digits():
    records = [
        clean(id="A", consignee_phone="+82 2-123-4567"),  # Seoul, from abroad
        clean(id="B", consignee_phone="+1 212 555 0100"),  # not Korea's code: as written
        clean(id="C", consignee_phone="82-10-1234-5678"),  # no + or 00: not international
        clean(id="D", consignee_phone="+"),
    ]
    valid, _ = normalize_frame(frame_of(records), rates=PACK.rates)
    expected = ["021234567", "12125550100", "821012345678", None]
    assert valid.get_column("consignee_phone").to_list() == expected
    online = [normalize(r, rates=PACK.rates)["consignee_phone"] for r in records]
    assert online == expected
    assert fired([records[2]]) == [{"pccc-name-phone-mismatch"}]


def test_country_codes_and_the_pccc_are_read_case_insensitively():
    # USD 180 shipped from "us" is within the US de-minimis of 200
    assert fired([clean(shipped_from="us", origin="us", route="us-kr", value=175)]) == [set()]
    assert fired([clean("express", origin=" mm ", shipped_from="th")]) == [{"drug-origin"}]
    assert fired([clean("express", route="th-la-kr")]) == [{"high-risk-route"}]
    assert fired([clean("express", pccc="p100000000001")]) == [{"pccc-stolen"}]
    assert fired([clean(pccc="p200000000001")]) == [set()]  # the format is P + 12 digits


def test_normalisation_is_the_same_online_and_in_batch():
    record = clean(
        shipped_from="us",
        origin="cn",
        route="cn-us-kr",
        pccc=" p200000000001 ",
        currency="usd",
        consignee_phone="+82 (10) 1234-5678",
        pccc_owner_phone="---",
    )
    online = normalize(record, rates=PACK.rates)
    valid, errors = normalize_frame(frame_of([record]), rates=PACK.rates)
    assert errors.height == 0
    batch = valid.row(0, named=True)
    fields = ("shipped_from", "origin", "route", "pccc", "currency", "consignee_key")
    fields += ("consignee_phone", "pccc_owner_phone")
    assert (
        {k: batch[k] for k in fields}
        == {k: online[k] for k in fields}
        == {
            "shipped_from": "US",
            "origin": "CN",
            "route": "CN-US-KR",
            "pccc": "P200000000001",
            "currency": "USD",
            "consignee_key": "P200000000001",
            "consignee_phone": "01012345678",
            "pccc_owner_phone": None,
        }
    )


# --------------------------------------------------------------------------- 3. lengths


@pytest.mark.parametrize(
    ("field", "limit"), [("id", 64), ("awb", 64), ("bag_tag", 64), ("supplier", 200)]
)
def test_a_value_longer_than_its_column_is_a_field_error(field, limit):
    assert MAX_LENGTH[field] == limit
    fits = clean(**{field: "X" * limit})
    assert Engine(PACK).decide(fits).declaration_id == fits["id"]
    too_long = clean(**{field: "X" * (limit + 1)})
    with pytest.raises(DeclarationError) as err:
        Engine(PACK).decide(too_long)
    assert [(p.field, p.message) for p in err.value.problems] == [
        (field, f"too long: at most {limit} characters")
    ]
    # in a batch, the row is reported and the others are scored
    result = score_frame(PACK, frame_of([clean(id="OK"), too_long]), quotas=False)
    assert result.decisions.get_column("id").to_list() == ["OK"]
    assert result.errors.select("row", "field", "message").rows() == [
        (2, field, f"too long: at most {limit} characters")
    ]


def test_consignee_key_columns_are_as_long_as_the_checks():
    history = SqlHistory()
    columns = history.declarations.c
    assert columns.id.type.length == MAX_LENGTH["id"] == history.decisions.c.id.type.length
    assert columns.awb.type.length == MAX_LENGTH["awb"]
    assert columns.bag_tag.type.length == MAX_LENGTH["bag_tag"]
    assert columns.supplier.type.length == MAX_LENGTH["supplier"]
    key = columns.consignee_key.type.length
    assert key == MAX_LENGTH["pccc"] == MAX_LENGTH["consignee_name"]
    for field in ("consignee_name", "pccc"):
        with pytest.raises(DeclarationError) as err:
            Engine(PACK).decide(clean(**{field: "K" * (key + 1)}))
        assert [p.field for p in err.value.problems] == [field]


@pytest.fixture(scope="module")
def pg_url():
    with pg_helpers.postgres_schema() as url:
        yield url


def test_long_ids_are_refused_before_postgresql_sees_them(pg_url):
    engine = Engine(PACK, history=SqlHistory(pg_url))
    with pytest.raises(DeclarationError) as err:
        engine.decide(clean(id="X" * 65))
    assert err.value.problems[0].field == "id"
    with pytest.raises(DeclarationError) as err:
        engine.decide(clean(id="Y1", awb="A" * 70))
    assert err.value.problems[0].field == "awb"
    longest = clean(id="I" * 64, awb="A" * 64, supplier="S" * 200, consignee_name="N" * 200)
    assert engine.decide(longest).declaration_id == "I" * 64


# --------------------------------------------------------------------------- 4. text codes


@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("hs_code", 901),
        ("consignee_postal", 4524),
        ("pccc_owner_postal", 4524),
        ("consignee_phone", 1012345678),
        ("pccc_owner_phone", 1012345678),
        ("awb", 1801234567),
        ("bag_tag", 180123456),
    ],
)
def test_codes_given_as_numbers_are_refused_online_and_in_batch(field, number):
    with pytest.raises(DeclarationError) as err:
        Engine(PACK).decide(clean(**{field: number}))
    [problem] = err.value.problems
    assert problem.field == field and "must be text" in problem.message
    frame = frame_of([clean(id="A"), clean(id="B")]).with_columns(
        pl.Series(field, [None, number], dtype=pl.Int64)
    )
    result = score_frame(PACK, frame, quotas=False)
    assert result.decisions.get_column("id").to_list() == ["A"]
    [(row, got, message)] = result.errors.select("row", "field", "message").rows()
    assert (row, got) == (2, field) and "must be text" in message


def test_json_lines_giving_a_code_as_a_number_are_row_errors_naming_line_and_field(tmp_path):
    lines = [
        json.dumps(clean(id="A", hs_code="0901.11", description="coffee beans")),
        "",
        json.dumps(clean(id="B", hs_code=901)),
        json.dumps(clean(id="C", consignee_postal=4524, pccc_owner_postal=4524)),
        json.dumps(clean(id=17, value=12.5, quantity=2)),  # numbers where numbers (or ids) may be
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = score_file(PACK, path, quotas=False)
    assert result.decisions.get_column("id").to_list() == ["A", "17"]
    assert result.errors.select("row", "id", "field", "value").rows() == [
        (2, "B", "hs_code", "901"),
        (3, "C", "consignee_postal", "4524"),
        (3, "C", "pccc_owner_postal", "4524"),
    ]
    messages = result.errors.get_column("message").to_list()
    assert messages[0] == "line 3: must be text (a quoted string), not a number: a number " + (
        "loses leading zeros"
    )
    assert all(m.startswith("line 4: must be text") for m in messages[1:])
    # Without them the file takes the fast path, with the same values as the exact reader's.
    path.write_text("\n".join([lines[0], lines[4]]) + "\n", encoding="utf-8")
    fast, problems = read_declarations(path)
    assert problems.height == 0
    columns = ("__row", "id", "hs_code", "value", "quantity")
    assert fast.select(columns).rows() == [
        (1, "A", "0901.11", "30", "2"),
        (2, "17", "6109.10", "12.5", "2"),
    ]
    assert expand(score_file(PACK, path, quotas=False)).select("id", "rules").rows() == [
        ("A", ""),
        ("17", ""),
    ]


def test_ids_may_still_be_numbers():
    record = clean(id=None)
    record["id"] = 17
    assert Engine(PACK).decide(record).declaration_id == "17"
    result = score_frame(PACK, frame_of([record]), quotas=False)
    assert result.errors.height == 0 and result.decisions.get_column("id").to_list() == ["17"]


def test_csv_codes_keep_their_leading_zeros(tmp_path):
    records = [
        clean(id="A", hs_code="0901.11", description="coffee beans"),
        clean(id="B", consignee_postal="04524", pccc_owner_postal="04524"),
    ]
    path = tmp_path / "d.csv"
    frame_of(records).write_csv(path)
    result = score_file(PACK, path, quotas=False)
    assert result.errors.height == 0
    rows = expand(result).select("id", "rules").rows()
    assert rows == [("A", ""), ("B", "")]
    valid, _ = normalize_frame(pl.read_csv(path, infer_schema=False), rates=PACK.rates)
    assert valid.get_column("hs_code").to_list() == ["090111", "610910"]
    assert valid.get_column("consignee_postal").to_list() == ["06236", "04524"]


# --------------------------------------------------------------------------- 5. fusion


def det(category: str, score: float = 0.9) -> Detection:
    return Detection(box=(10.0, 10.0, 50.0, 50.0), category=category, class_id=0, score=score)


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("kitchen knives set", "knife"),
        ("Pocketknife", "knife"),
        ("stainless multitool", "pliers"),
        ("smartphone", "battery"),
        ("Powerbank 20000mAh", "power_bank"),
        ("power-bank", "power_bank"),
        ("spare batteries", "battery"),
        ("wireless headphones", "battery"),
        ("bluetooth earbuds", "battery"),
        ("single malt whiskies", "bottle"),
        ("skincare set", "cosmetic"),
    ],
)
def test_plurals_and_compound_words_explain_what_the_xray_sees(description, category):
    engine = Engine(PACK)
    decision = engine.decide(clean(id="F", awb="AWB-F", hs_code="9999", description=description))
    fused = fuse(decision, engine.history.declaration("F"), [det(category)], config=PACK.fusion)
    assert fused.unexplained == () and fused.decision.lane == decision.lane


def test_keywords_match_at_the_start_of_a_word_only():
    classes = explained_classes(
        {"kind": "express", "description": "telephone table"}, config=PACK.fusion
    )
    assert "battery" not in classes  # "phone" inside "telephone" is not a phone
    engine = Engine(PACK)
    decision = engine.decide(clean(id="G", awb="AWB-G", description="cotton t-shirt"))
    fused = fuse(decision, engine.history.declaration("G"), [det("knife")], config=PACK.fusion)
    assert fused.decision.lane == "red" and [d.category for d in fused.unexplained] == ["knife"]
