"""The ``customs-vision`` console command.

The CLI is the edge of the program: it reads settings and turns arguments into
calls. Command bodies import the folders below ``cv`` (datasets, models,
training, ...) lazily, so ``customs-vision --help`` stays fast and
``import cv`` never pulls in heavy libraries.

Exit codes: 0 success; 1 a deliberate error without a more specific kind;
2 bad configuration or arguments; 3 a file in the wrong format; 4 data that
failed validation; 5 something asked for does not exist; 130 interrupted.
"""

from __future__ import annotations

import sys

import typer

from cv.cli.bench import app as bench_app
from cv.cli.data import app as data_app
from cv.cli.eval import app as eval_app
from cv.cli.export import app as export_app
from cv.cli.reid import app as reid_app
from cv.cli.risk import app as risk_app
from cv.cli.serve import app as serve_app
from cv.cli.train import app as train_app
from cv.errors import CustomsVisionError
from cv.log import console, setup_logging
from cv.settings import get_settings

app = typer.Typer(
    name="customs-vision",
    help="Computer-vision inspection toolkit for customs: X-ray data, detectors, "
    "re-identification, alerts and declaration risk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(export_app, name="export")
app.add_typer(serve_app, name="serve")
app.add_typer(risk_app, name="risk")
app.add_typer(reid_app, name="reid")
app.add_typer(bench_app, name="bench")


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    setup_logging("DEBUG" if verbose else get_settings().log_level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except CustomsVisionError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console.print("[yellow]aborted[/]")
        return 1
    except typer.TyperException as exc:  # usage errors carry their own exit code
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
