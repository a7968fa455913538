"""``castlewatch bench``: the throughput benchmark suite of the source checkout (``bench/``).

``bench/`` sits beside ``castlewatch/`` in the repository and is not part of the wheel,
so it is found from an editable install (``pip install -e '.[bench]'``) and imported
only when the command runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import click
from rich.console import Console

import castlewatch


class BenchError(click.ClickException):
    """The suite cannot run (no ``bench/``, a missing dependency): ``Error: ...``, exit 2."""

    exit_code = 2


def checkout_root() -> Path:
    """The directory that holds the ``castlewatch`` package (a checkout's root when editable)."""
    return Path(castlewatch.__file__).resolve().parent.parent


def import_bench() -> tuple[ModuleType, ModuleType]:
    """Import ``bench`` and ``bench.report`` from the source checkout.

    Raises:
        BenchError: ``bench/`` is not beside the installed ``castlewatch`` package.
    """
    root = checkout_root()
    if not (root / "bench" / "__init__.py").is_file():
        raise BenchError(
            f"the benchmark suite is not installed: 'bench/' is not in {root}. It ships with castlewatch's "
            "source checkout, not with the package; from a checkout run: pip install -e '.[bench]'"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    loaded = sys.modules.get("bench")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve().parent != root / "bench":
        raise BenchError(f"another module named 'bench' is already imported ({loaded.__file__})")
    try:
        return importlib.import_module("bench"), importlib.import_module("bench.report")
    except ImportError as err:
        raise BenchError(f"cannot import the benchmark suite: {err}; install its extra: pip install -e '.[bench]'")


@click.command("bench")
@click.option("--quick", is_flag=True, help="Smaller streams and 3 runs: under two minutes on 2 cores.")
@click.option("--json", "json_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write every figure (medians, min, max, counts, disagreements) as JSON.")
@click.option("--plot", "plot_path", metavar="FILE.png", type=click.Path(dir_okay=False),
              help="Write a bar chart of events/s per workload against the baselines (needs matplotlib).")
@click.option("--markdown", "markdown_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the table as Markdown (for the README).")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Multiply the stream sizes, e.g. 0.01 for a smoke run.")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Timed runs per figure (default: 3 quick, 5 full).")
@click.option("--workdir", metavar="DIR", type=click.Path(file_okay=False),
              help="Generate the streams here and keep them (default: a temporary directory).")
def bench_command(quick: bool, json_path: str | None, plot_path: str | None, markdown_path: str | None,
                  scale: float, runs: int | None, workdir: str | None) -> None:
    """Measure castlewatch's throughput against the floor, a naive interpreter and the peers.

    Generates CloudTrail, VPC Flow Logs and application-log streams, times each
    workload (median of repeated runs, min and max), checks that every implementation
    finds the same matches, and prints the table. The full mode (default) is the one
    for release notes; --quick finishes in under two minutes on 2 cores.
    """
    bench, report = import_bench()
    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise BenchError("--plot needs matplotlib: pip install -e '.[bench]'") from None
    console = Console()
    if not console.is_terminal:  # a file or a pipe: room for the whole table
        console = Console(width=max(console.width, 160))
    err = Console(stderr=True)
    with err.status("castlewatch bench") as status:
        results = bench.run_suite(quick=quick, scale=scale, runs=runs, workdir=workdir,
                                  progress=lambda message: status.update(f"castlewatch bench: {message}"))
    report.print_report(results, console)
    if json_path:
        report.write_json(results, json_path)
    if plot_path:
        report.write_plot(results, plot_path)
    if markdown_path:
        Path(markdown_path).write_text(report.markdown(results), encoding="utf-8")
