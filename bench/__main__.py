"""`python -m bench`: run the benchmark of issue 5 and write bench/RESULTS.md."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from bench.code import snapshot_head, work_tree
from bench.datasets import SIZES
from bench.harness import METHOD, REPO, run_size
from bench.measure import DEFAULT_MAX_RSS_MB
from bench.report import (
    SizeResult,
    machine_info,
    render_markdown,
    results_as_json,
    rich_table,
)


def parse_sizes(text: str) -> list[str]:
    """'100k,1m' or '100k 1m' -> ['100k', '1m'], in the order of SIZES."""
    wanted = {s.lower() for s in re.split(r"[,\s]+", text.strip()) if s}
    unknown = wanted - set(SIZES)
    if unknown or not wanted:
        msg = f"unknown size(s) {sorted(unknown)}: choose from {', '.join(SIZES)}"
        raise click.BadParameter(msg, param_hint="--sizes")
    return [s for s in SIZES if s in wanted]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--sizes",
    default=",".join(SIZES),
    show_default=True,
    help="Sizes to run, comma- or space-separated.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=REPO / "data" / "bench",
    show_default=True,
    help="Where the databases are cached and the work copies go.",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path, dir_okay=False),
    default=REPO / "bench" / "RESULTS.md",
    show_default=True,
    help="Markdown file to write (rewritten after each size).",
)
@click.option("--keep-work", is_flag=True, help="Keep the working copies and targets.")
@click.option(
    "--max-rss-gb",
    type=click.FloatRange(min=0.1),
    default=round(DEFAULT_MAX_RSS_MB / 1024, 1),
    show_default=True,
    help="Stop a measured step whose resident set grows above this (half the RAM).",
)
@click.option(
    "--code",
    type=click.Choice(["head", "worktree"]),
    default="head",
    show_default=True,
    help="Measure pipeline/ and queries/ as committed at HEAD (a snapshot), or the work tree.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs of each step; the median counts (the machine's speed drifts).",
)
def main(
    sizes: str,
    data_dir: Path,
    results: Path,
    keep_work: bool,
    max_rss_gb: float,
    code: str,
    repeat: int,
) -> None:
    """Benchmark the ETL against a pure-SQLite script and a bare read (issue 5)."""
    labels = parse_sizes(sizes)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    etl_code = snapshot_head(REPO, data_dir / "code") if code == "head" else work_tree(REPO)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a log file: no need to squeeze the table
    machine = {**machine_info(), "ETL code": etl_code.description}
    date = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    done: list[SizeResult] = []
    for label in labels:
        done.append(
            run_size(
                label,
                data_dir,
                keep_work,
                log=console.log,
                max_rss_mb=max_rss_gb * 1024,
                code=etl_code,
                repeat=repeat,
            )
        )
        # Rewritten after each size, so that a long run stopped halfway keeps its numbers.
        missing = [f"size {s} not measured" for s in labels if s not in {r.label for r in done}]
        results.write_text(render_markdown(done, machine, date, METHOD, missing), encoding="utf-8")
        (data_dir / "results.json").write_text(
            json.dumps(
                {"date": date, "machine": machine, "results": results_as_json(done)}, indent=1
            )
            + "\n",
            encoding="utf-8",
        )
    console.print(rich_table(done))
    console.print(f"written: {results}")
    if any(r.failure for r in done):
        sys.exit(1)


if __name__ == "__main__":
    main()
