"""``customs-vision serve``: run the inference server and manage its API tokens.

``run`` starts the server (uvicorn) with the default model on SQLite unless told
otherwise; ``token create / list / revoke`` manage API tokens (the secret is
printed once, only its sha256 is stored; a token may expire); ``migrate`` brings
the database schema to the newest revision. Options left out fall back to
``CV_SERVER_*`` variables. A database that cannot be reached is one error line
naming it (password masked) and why, for every command.
"""

from __future__ import annotations

import contextlib
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from cv.log import console

app = typer.Typer(
    help="Inference server: run it, manage API tokens, migrate its database.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens with roles: scanner, camera, reader, inspector, admin.")
app.add_typer(token_app, name="token")

CONSOLE_PATH = "/console"
"""Where the reader console page is served."""
HANDHELD_PATH = "/handheld"
"""Where the inspectors' handheld page is served."""
WATCHLIST_PATH = "/watchlist"
"""Where the admins' watch-list page is served."""

_DB_HELP = "Database URL (default: CV_SERVER_DATABASE_URL, else SQLite under runs/server)."


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from cv.errors import ConfigError
    from cv.inference_server.settings import ServerSettings

    try:
        return ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(err["msg"], field=".".join(str(x) for x in err["loc"])) from None


def _sessions(db: str | None) -> Any:
    """Sessions on the migrated database.

    Raises:
        ConfigError: If the URL is not a database URL or the database cannot be
            reached (the URL named, its password masked).
    """
    from cv.inference_server.db import migrate, session_factory

    engine = _reachable_engine(_settings(database_url=db).database_url)
    migrate(engine)
    return session_factory(engine)


def _reachable_engine(url: str) -> Any:
    """An engine on ``url`` that has connected once.

    Raises:
        ConfigError: If the URL is not a database URL or the database cannot be
            reached (the URL named, its password masked).
    """
    from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

    from cv.errors import ConfigError
    from cv.inference_server.db import make_engine, masked_url

    try:
        shown = masked_url(url)
    except ArgumentError:
        raise ConfigError("not a database URL (see --db)", field="database_url") from None
    try:
        engine = make_engine(url)
        with engine.connect():
            pass
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        # ImportError: a dialect whose driver is not installed (mysql:// without MySQLdb).
        raise ConfigError(
            f"{shown} is not a usable database URL ({exc})", field="database_url"
        ) from None
    except OSError as exc:  # make_engine makes the folder of an SQLite file
        raise ConfigError(
            f"cannot reach the database at {shown}: cannot make the folder {exc.filename} "
            f"({exc.strerror})",
            field="database_url",
        ) from None
    except (OperationalError, InterfaceError) as exc:
        # The driver's first line says why (refused, unknown host, bad password).
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        raise ConfigError(
            f"cannot reach the database at {shown}: {reason}", field="database_url"
        ) from None
    return engine


_DURATION = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str, *, option: str) -> timedelta:
    """A duration given on the command line: a whole number of days, hours or minutes
    (``90d``, ``12h``, ``30m``).

    Raises:
        ConfigError: For anything else, naming ``option``.
    """
    from cv.errors import ConfigError

    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"expected a whole number of days, hours or minutes (1 to 999999) like 90d, "
            f"12h or 30m, got {text!r}",
            field=option,
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


# -- the addresses to print --------------------------------------------------------------

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
"""Hosts that mean every interface: no one can browse to them."""


def http_base(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 literal in brackets (``http://[::1]:8000``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def loopback_base(host: str, port: int) -> str:
    """Where this machine reaches a server listening on ``host`` (the demo posts there):
    a wildcard host becomes loopback (:func:`~cv.inference_server.demo.local_url`)."""
    from cv.inference_server.demo import local_url

    return local_url(http_base(host, port))


def lan_address() -> str | None:
    """This machine's IPv4 address on its default route, or ``None`` (offline).

    Connecting a UDP socket sends nothing: the kernel only picks the route and
    the source address it would use.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        address = s.getsockname()[0]
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


def listen_everywhere(port: int) -> socket.socket:
    """A TCP socket bound to ``port`` on every IPv6 and IPv4 address (``--host ::``).

    Raises:
        ConfigError: If the port cannot be bound (in use, IPv6 unavailable).
    """
    from cv.errors import ConfigError

    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(
            f"no IPv6 on this machine ({exc.strerror or exc})", field="host"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on [::]:{port}: {exc.strerror or exc}", field="host"
        ) from None
    sock.set_inheritable(True)
    return sock


def link_bases(host: str, port: int) -> list[str]:
    """The addresses to print for people, the one to use first.

    A server on a wildcard host is named by the machine's LAN address (what a
    phone on the same network opens), its host name, then loopback; any other
    host by itself.
    """
    if host not in WILDCARD_HOSTS:
        return [http_base(host, port)]
    names = (lan_address(), socket.gethostname())
    bases = [http_base(n, port) for n in names if n and n != "localhost"]
    bases.append(loopback_base(host, port))
    return list(dict.fromkeys(bases))


@app.command()
def run(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    model: Path | None = typer.Option(
        None, "--model", help="X-ray model directory (default: the shipped model)."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    demo: bool = typer.Option(
        False, "--demo/--no-demo", help="Feed synthetic demo scans and create bootstrap tokens."
    ),
    demo_rate: float | None = typer.Option(
        None, "--demo-rate", min=0.01, help="Demo scans per second (default: CV_SERVER_DEMO_RATE)."
    ),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="X-ray model runtime: onnx (default; CUDA / TensorRT when present) or openvino (CPU).",
    ),
    precision: str | None = typer.Option(
        None, "--precision", help="With --runtime openvino: f32 (default), bf16 or auto."
    ),
) -> None:
    """Start the inference server; prints the reader console and handheld URLs."""
    import uvicorn

    from cv.inference_server.app import create_app
    from cv.inference_server.logs import setup_json_logging

    overrides: dict[str, Any] = {
        "model_dir": model,
        "database_url": db,
        "runtime": runtime,
        "precision": precision,
    }
    if demo:
        overrides.update(demo_feed=True, bootstrap_tokens=True, demo_rate=demo_rate)
    settings = _settings(**overrides)
    # The lifespan would report an unreachable database as a traceback; say it in one line.
    _reachable_engine(settings.database_url).dispose()
    setup_json_logging()
    bases = link_bases(host, port)
    base = bases[0]
    console.print(
        f"reader console: {base}{CONSOLE_PATH}\nhandheld:       {base}{HANDHELD_PATH}\n"
        f"watch list:     {base}{WATCHLIST_PATH}\nAPI docs:       {base}/docs",
        highlight=False,
    )
    if len(bases) > 1:
        console.print(f"also at:        {', '.join(bases[1:])}", highlight=False)
    if settings.demo_feed:
        console.print(
            f"demo feed:      {settings.demo_rate:g} scans/s; sign-in links follow once the "
            "server listens",
            highlight=False,
        )
    server_app = create_app(settings)
    server_app.state.base_url = loopback_base(host, port)  # where the demo feed posts
    server_app.state.link_base = base  # what the demo's sign-in links name
    if host != "::":
        uvicorn.run(server_app, host=host, port=port, log_config=None, access_log=False)
        return
    # asyncio makes a socket on `::` IPv6-only; every address means IPv4 too (the
    # phones on the hall's Wi-Fi, the LAN address printed above).
    sock = listen_everywhere(port)
    config = uvicorn.Config(server_app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(3)  # start-up failed (logged); uvicorn.run exits with 3 too


@app.command()
def migrate(db: str | None = typer.Option(None, "--db", help=_DB_HELP)) -> None:
    """Create or upgrade the database schema to the newest revision."""
    url = _settings(database_url=db).database_url
    _sessions(db)
    from cv.inference_server.db import masked_url

    typer.echo(f"database at newest schema: {masked_url(url)}")


@app.command()
def purge(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="The server's image folder (default: CV_SERVER_DATA_DIR)."
    ),
    retention_days: float | None = typer.Option(
        None,
        "--retention-days",
        help="Keep unmatched CCTV tracks this long (default: CV_SERVER_REID_RETENTION_DAYS, 30).",
    ),
    actor: str = typer.Option("cli", "--actor", help="Who runs the purge, for the audit log."),
) -> None:
    """Delete CCTV embeddings and crops past their retention now (audited).

    The server does this by itself every few minutes; this is for a server that is
    stopped, or a shorter retention decided today.
    """
    from cv.inference_server import cctv
    from cv.inference_server.db import utcnow
    from cv.inference_server.storage import ImageStore

    settings = _settings(data_dir=data_dir, reid_retention_days=retention_days)
    store = ImageStore(Path(settings.data_dir) / "cctv")
    with _sessions(db)() as session:
        report = cctv.purge(
            session,
            store,
            now=utcnow(),
            retention_days=settings.reid_retention_days,
            actor=actor,
            always_audit=True,
        )
    typer.echo(
        f"purged {report.tracks} unmatched tracks and the images of "
        f"{report.sighting_images} rejected sightings ({report.files} files) "
        f"captured before {report.cutoff.isoformat(timespec='seconds')}"
    )


@app.command("alert-stats")
def alert_stats_cmd(
    since: str | None = typer.Option(
        None, "--since", help="Alerts raised from this date or time on (UTC), e.g. 2026-11-01."
    ),
    until: str | None = typer.Option(None, "--until", help="Alerts raised before this (UTC)."),
    site: str | None = typer.Option(None, "--site", help="Only this site's alerts."),
    lane: str | None = typer.Option(None, "--lane", help="Only this lane's alerts."),
    kind: str = typer.Option(
        "xray",
        "--kind",
        help="Alert kind: xray or reid. Declaration risk raises no alerts of its own: it "
        "adds priority and reasons to X-ray alerts, counted under xray.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """How the alerts fared with the inspectors: states, precision, response times."""
    import json

    from rich.console import Console
    from rich.table import Table

    from cv.cli.data_feedback import parse_time
    from cv.inference_server.alert_stats import alert_stats

    out = Console()  # the figures go to stdout; messages go to stderr

    with _sessions(db)() as session:
        figures = alert_stats(
            session,
            kind=kind,
            site=site,
            lane=lane,
            since=parse_time(since, field="since"),
            until=parse_time(until, field="until"),
        )
    if as_json:
        typer.echo(json.dumps(figures.to_dict(), indent=2))
        return

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.1f} %"

    def secs(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} s"

    def when(t: Any) -> str:
        return t.isoformat(timespec="minutes") if t is not None else ""

    window = f"{when(figures.since) or 'the start'} to {when(figures.until) or 'now'}"
    table = Table(title=f"{kind} alerts raised from {window}")
    for c in ("", "raised", "pending", "confirmed", "rejected", "precision", "escalated"):
        table.add_column(c, justify="left" if not c else "right", min_width=len(c))
    groups = [
        [("all", figures.total)],
        list(figures.per_class.items()),  # by the alert's top class
        list(figures.per_lane.items()),  # "site · lane"
    ]
    for group in groups:
        if not group:
            continue
        table.add_section()
        for name, v in group:
            table.add_row(
                name, str(v.raised), str(v.open + v.acknowledged), str(v.confirmed),
                str(v.rejected), pct(v.precision), str(v.escalated),
            )  # fmt: skip
    out.print(table)
    a, d = figures.to_acknowledge, figures.to_verdict
    out.print(
        f"to acknowledge: median {secs(a.p50_s)}, 90 % within {secs(a.p90_s)} ({a.n} alerts); "
        f"to verdict: median {secs(d.p50_s)}, 90 % within {secs(d.p90_s)} ({d.n} alerts)"
    )
    out.print(
        "pending = open or acknowledged, no verdict yet; precision = confirmed / "
        "(confirmed + rejected). Bags that raised no alert get no verdict, so missed "
        "threats are not counted here."
    )


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="A name for the token (a device, a person)."),
    role: str = typer.Option(..., "--role", help="scanner, camera, reader, inspector or admin."),
    expires_in: str | None = typer.Option(
        None,
        "--expires-in",
        help="The token stops working after this long: days, hours or minutes, e.g. 90d, "
        "12h, 30m (default: never; revoke it to stop it).",
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Create a token and print its secret (shown this once; only its hash is stored)."""
    from cv.inference_server.auth import create_token

    lifetime = None if expires_in is None else parse_duration(expires_in, option="--expires-in")
    with _sessions(db)() as session:
        secret = create_token(session, name=name, role=role, expires_in=lifetime)
    typer.echo(secret)


@token_app.command("list")
def token_list(db: str | None = typer.Option(None, "--db", help=_DB_HELP)) -> None:
    """List tokens: name, role, created, revoked, expires (secrets are not stored)."""
    from cv.inference_server.auth import expiry_text, is_expired, list_tokens

    with _sessions(db)() as session:
        tokens = list_tokens(session)
        if not tokens:
            # Without a token nothing but the pages' sign-in form answers.
            typer.echo(
                "no tokens yet: make one with `customs-vision serve token create NAME --role ROLE`"
            )
        for t in tokens:
            revoked = t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "-"
            created = t.created_at.isoformat(timespec="seconds")
            past = is_expired(t.expires_at)
            expiry = f"{'expired' if past else 'expires'}: {expiry_text(t.expires_at)}"
            typer.echo(f"{t.name}\t{t.role}\t{created}\trevoked: {revoked}\t{expiry}")


@token_app.command("revoke")
def token_revoke(
    name: str = typer.Argument(..., help="The token's name."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Revoke a token: it stops working at once."""
    from cv.inference_server.auth import revoke_token

    with _sessions(db)() as session:
        revoke_token(session, name=name)
    typer.echo(f"revoked {name}")
