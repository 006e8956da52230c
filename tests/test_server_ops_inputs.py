"""Operators' bad input gets a 4xx or a one-line CLI error naming it, never a 500 or a
traceback: times out of range, unusable model directories, alert kinds, token names,
an unreachable database."""

from __future__ import annotations

from pathlib import Path

import pytest
import server_helpers as h
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cv.errors import ConfigError
from cv.inference_server import db

YEAR_1_EAST = "0001-01-01T00:00:00+01:00"  # before year 1 in UTC
YEAR_9999_WEST = "9999-12-31T23:30:00-01:00"  # after year 9999 in UTC


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An app without a model: nothing here needs one."""
    from cv.inference_server.app import create_app

    tmp = tmp_path_factory.mktemp("ops-inputs")
    app = create_app(h.server_settings(tmp, tmp / "no-model"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, h.make_tokens(app)


# -- times out of range ----------------------------------------------------------------


@pytest.mark.parametrize(("param", "value"), [("since", YEAR_1_EAST), ("until", YEAR_9999_WEST)])
def test_alert_stats_time_out_of_range_is_422_naming_it(served, param, value):
    client, tokens = served
    r = client.get("/v1/alerts/stats", params={param: value}, headers=tokens["inspector"])
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{param}: ") and "out of range" in r.json()["detail"]


def test_scan_list_since_out_of_range_is_422_naming_it(served):
    client, tokens = served
    for value in (YEAR_1_EAST, YEAR_9999_WEST):
        r = client.get("/v1/scans", params={"since": value}, headers=tokens["reader"])
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("since: ") and "out of range" in r.json()["detail"]
    # The edges that stay in range still answer.
    for value in ("0001-01-01T00:00:00-01:00", "9999-12-31T23:30:00+01:00"):
        r = client.get("/v1/scans", params={"since": value}, headers=tokens["reader"])
        assert r.status_code == 200, r.text


# -- model swap: paths the file system refuses -----------------------------------------


def swap(client, tokens, model_dir: str):
    return client.post(
        "/v1/admin/models/xray", json={"model_dir": model_dir}, headers=tokens["admin"]
    )


def test_swap_to_an_unusable_path_is_4xx_naming_model_dir(served, tmp_path):
    client, tokens = served
    cases = {
        "NUL byte": (f"{tmp_path}/a\x00b", 422),
        "a name longer than the file system allows": (f"{tmp_path}/{'a' * 300}", 422),
        "a path longer than PATH_MAX": (f"{tmp_path}/{'a/' * 2100}", 422),
        "missing": (str(tmp_path / "missing"), 404),
    }
    try:  # a folder on the way the server may not enter (in containers, mostly)
        Path("/proc/1/root/models").resolve()
    except PermissionError:
        cases["a folder the server may not enter"] = ("/proc/1/root/models", 422)
    for what, (model_dir, code) in cases.items():
        r = swap(client, tokens, model_dir)
        assert r.status_code == code, (what, r.text)
        body = r.json()
        assert "model_dir" in (body.get("field") or body["detail"]), (what, body)
        assert len(body["detail"]) < 1000, what  # the path is not echoed whole
    assert client.get("/v2/health/live").status_code == 200


def test_swap_to_an_unreadable_model_is_422_and_nothing_changes(served, monkeypatch):
    from cv.inference_server import modelhost

    def unreadable(model_dir, **kwargs):
        raise PermissionError(13, "Permission denied", str(model_dir / "model.json"))

    monkeypatch.setattr(modelhost, "load_and_warm_up", unreadable)
    client, tokens = served
    r = swap(client, tokens, "/srv/models/locked")
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "model_dir"
    assert "cannot read /srv/models/locked/model.json: Permission denied" in r.json()["detail"]
    assert client.get("/v2/health/ready").status_code == 503  # still no model


# -- alert kinds -----------------------------------------------------------------------


def test_risk_is_not_an_alert_kind_and_says_where_its_alerts_are(served, tmp_path, capfd):
    client, tokens = served
    r = client.get("/v1/alerts/stats", params={"kind": "risk"}, headers=tokens["inspector"])
    assert r.status_code == 422
    assert "counted under kind 'xray'" in r.json()["detail"]
    for kind in ("xray", "reid"):
        r = client.get("/v1/alerts/stats", params={"kind": kind}, headers=tokens["inspector"])
        assert r.status_code == 200 and r.json()["kind"] == kind

    from cv.cli import main

    code = main(["serve", "alert-stats", "--kind", "risk", "--db", f"sqlite:///{tmp_path}/s.db"])
    out = capfd.readouterr()
    assert code == 2, out
    assert "kind: declaration risk raises no alerts of its own" in out.err + out.out


# -- token names -----------------------------------------------------------------------


def test_token_names_are_checked(tmp_path):
    from cv.inference_server.auth import create_token

    engine = db.make_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    db.migrate(engine)
    with db.session_factory(engine)() as session:
        for name in ("", "a" * 65, "lane 3", "../x", "-dash-first", "bob\n", "ü-scanner"):
            with pytest.raises(ConfigError) as err:
                create_token(session, name=name, role="admin")
            assert err.value.field == "name", name
        for name in ("lane-3-scanner", "kim.jisoo@icn", "cam_7+backup", "a" * 64):
            assert create_token(session, name=name, role="reader").startswith("cvt_")
        assert session.scalar(select(func.count()).select_from(db.Token)) == 4
    engine.dispose()


def test_cli_token_create_refuses_an_empty_or_long_name(tmp_path, capfd):
    from cv.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["serve", "token", "create", "", "--role", "admin", "--db", url]) == 2
    assert main(["serve", "token", "create", "x" * 65, "--role", "admin", "--db", url]) == 2
    out = capfd.readouterr()
    text = out.out + out.err
    assert "name: a token needs a name" in text and "at most 64" in text
    assert "Traceback" not in text and "cvt_" not in text


def test_cli_names_an_unreachable_database_with_its_password_masked(capfd):
    from cv.cli import main

    url = "postgresql+psycopg://cv:s3cret-pw@127.0.0.1:1/customs"
    code = main(["serve", "token", "list", "--db", url])
    out = capfd.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert "cannot reach the database at postgresql+psycopg://cv:***@127.0.0.1:1/customs" in text
    assert "s3cret-pw" not in text and "Traceback" not in text
