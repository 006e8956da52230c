"""Rule packs: complete validation with file, line and column; hot swap keeps the old pack on error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cv.datasets.declarations import clean_declaration
from cv.errors import ConfigError, NotFoundError
from cv.models.risk.engine import Engine
from cv.models.risk.fusion import explained_classes
from cv.models.risk.pack import DEFAULT_PACK, RulePackError, load_pack, load_pack_text

MINIMAL = """\
id: test
version: "1"
rates: {USD: 1.0, EUR: 1.1}
lists:
  codes: {file: codes.csv, column: code}
lanes:
  thresholds: {red: 100, yellow: 50}
rules:
  - id: big
    reason: Worth more than USD 150.
    when: total_usd > 150
    lane: yellow
    score: 10
"""


def write_pack(tmp_path: Path, text: str) -> Path:
    (tmp_path / "codes.csv").write_text("code\nP100000000001\n", encoding="utf-8")
    path = tmp_path / "pack.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> RulePackError:
    with pytest.raises(RulePackError) as err:
        load_pack(write_pack(tmp_path, text))
    return err.value


def test_default_pack_loads_and_is_valid_from_march_2025():
    pack = load_pack(DEFAULT_PACK)
    assert pack.label == "kr-default@2026.1"
    assert len(pack.rules) == 27 and len({r.id for r in pack.rules}) == 27
    assert pack.rates["USD"] == 1.0 and "KRW" in pack.rates
    assert "P100000000001" in pack.lists["stolen_codes"]
    assert pack.tables["value_control"]["851712"] == 350.0
    assert set(pack.aggregates.values()) == {
        ("sum_value_same_awb", 0),
        ("sum_value_same_supplier_day", 0),
        ("count_same_buyer", 30),
    }
    from datetime import date

    assert pack.is_valid_on(date(2026, 1, 1)) and not pack.is_valid_on(date(2025, 1, 1))


def test_minimal_pack(tmp_path):
    pack = load_pack(write_pack(tmp_path, MINIMAL))
    assert [r.id for r in pack.rules] == ["big"]
    assert pack.lists["codes"] == frozenset({"P100000000001"})


@pytest.mark.parametrize("section", ["", "fusion:\n  min_detection_score: 0.7\n"])
def test_a_pack_leaving_out_its_fusion_table_takes_the_default_packs(tmp_path, section):
    pack = load_pack(write_pack(tmp_path, MINIMAL + section))
    default = load_pack(DEFAULT_PACK).fusion
    assert pack.fusion.explains == default.explains
    assert pack.fusion.personal_effects == default.personal_effects
    assert pack.fusion.min_detection_score == (0.7 if section else default.min_detection_score)
    # the plurals and compound words the default pack lists, not an older list of its own
    classes = explained_classes({"description": "kitchen knives, powerbank"}, config=pack.fusion)
    assert {"knife", "power_bank"} <= set(classes)


def test_the_errors_of_packs_and_declarations_are_exported_with_the_api():
    import cv.models.risk as risk
    from cv.models.risk import declaration, pack

    for module in (pack, declaration):
        errors = {
            name: value
            for name, value in vars(module).items()
            if isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == module.__name__
        }
        for name, error in errors.items():
            assert name in risk.__all__ and getattr(risk, name) is error, name
    from cv.models.risk import PackNotInForce

    assert issubclass(PackNotInForce, risk.RulePackError)


def test_unknown_field_in_a_block_condition_names_line_and_column_and_suggests(tmp_path):
    text = MINIMAL.replace(
        "    when: total_usd > 150\n",
        "    when: |\n      total_usd > 150\n        and valeu > 3\n",
    )
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (13, 13)
    assert "rules[0].when" in str(err) and "did you mean 'value'?" in str(err)
    assert str(err).startswith(f"{tmp_path / 'pack.yaml'}:13:13: ")
    assert isinstance(err, ConfigError) and err.exit_code == 2


def test_syntax_error_in_a_plain_condition(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace("total_usd > 150", "total_usd > > 150"))
    assert (err.line, err.column) == (11, 23)
    assert "expected a value" in str(err)


def test_unknown_key_names_its_position_and_the_nearest_key(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace("    lane: yellow", "    lnae: yellow"))
    assert (err.line, err.column) == (12, 5)
    assert "unknown key 'lnae' (did you mean 'lane'?)" in str(err)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("lane: yellow", "lane: purple"), "unknown lane 'purple'"),
        (("score: 10", "score: ten"), "expected a whole number"),
        (("file: codes.csv", "file: missing.csv"), "file not found"),
        (("column: code", "column: cod"), "no column 'cod' (did you mean 'code'?)"),
        (("total_usd > 150", "total_usd + 150"), "must be true or false"),
        (("total_usd > 150", "pccc in @code"), "unknown list '@code' (did you mean 'codes'?)"),
        (("total_usd > 150", "description matches '(a'"), "invalid regular expression"),
        (("red: 100", "red: 10"), "thresholds must rise"),
        (('version: "1"', "version: [1]"), "expected text"),
        (("rates: {USD: 1.0, EUR: 1.1}", "rates: {USD: -1}"), "must be between"),
    ],
)
def test_bad_packs_are_refused_with_a_reason(tmp_path, change, fragment):
    old, new = change
    err = error_of(tmp_path, MINIMAL.replace(old, new))
    assert fragment in str(err)
    assert err.line is not None or "file not found" in str(err) or err.path


def test_yaml_syntax_error_and_duplicate_rule(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace("rules:", "rules: [\n"))
    assert "YAML syntax error" in str(err) and err.line is not None
    duplicated = MINIMAL + MINIMAL[MINIMAL.index("  - id: big") :]
    err = error_of(tmp_path, duplicated)
    assert "duplicate rule id (first on line 9)" in str(err)


def test_bad_row_in_a_value_control_file_names_its_line(tmp_path):
    (tmp_path / "prices.csv").write_text("hs6,price\n851712,350\n847130,lots\n", encoding="utf-8")
    text = MINIMAL.replace(
        "lanes:", "tables:\n  prices: {file: prices.csv, key: hs6, value: price}\nlanes:"
    )
    err = error_of(tmp_path, text)
    assert err.path == str(tmp_path / "prices.csv") and err.line == 3 and "not a number" in str(err)


def test_missing_pack_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        load_pack(tmp_path / "nope.yaml")


def test_hot_swap_refuses_a_bad_pack_and_keeps_serving_the_old_one(tmp_path):
    engine = Engine(load_pack(DEFAULT_PACK))
    before = engine.decide(clean_declaration(id="A", value=160))
    assert before.lane == "yellow"
    bad = DEFAULT_PACK.read_text(encoding="utf-8").replace(
        "when: total_usd > 150", "when: total_usd >> 150"
    )
    folder = tmp_path / "kr"
    shutil.copytree(DEFAULT_PACK.parent, folder)
    with pytest.raises(RulePackError):
        engine.load_pack_text(bad, path=folder / "pack.yaml")
    assert engine.pack.label == "kr-default@2026.1"
    assert engine.decide(clean_declaration(id="B", value=160)).lane == "yellow"
    # a good new version swaps in, and is used for the next decision
    good = DEFAULT_PACK.read_text(encoding="utf-8").replace(
        'version: "2026.1"', 'version: "2026.2"'
    )
    good = good.replace("when: total_usd > 150 and", "when: total_usd > 170 and")
    previous = engine.load_pack_text(good, path=folder / "pack.yaml")
    assert previous.version == "2026.1" and engine.pack.version == "2026.2"
    after = engine.decide(clean_declaration(id="C", value=160))
    assert after.pack_version == "2026.2" and "list-over-deminimis" not in {
        f.id for f in after.fired
    }


def test_load_pack_text_reports_the_given_path(tmp_path):
    with pytest.raises(RulePackError) as err:
        load_pack_text("id: x\nversion: 1\nrules: []\n", path=tmp_path / "uploaded.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'uploaded.yaml'}:3:8: rules:")
