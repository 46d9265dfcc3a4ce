"""Load the SQL files under queries/ by name (the file name is the query's name)."""

from __future__ import annotations

from functools import cache
from pathlib import Path


def _queries_dir() -> Path:
    """queries/ of the checkout, or its copy inside an installed wheel.

    The design keeps the SQL at the top of the repository, beside pipeline/, which an
    editable install (`make etl`) reads in place. A wheel (`pip install .`) has no
    top-level folder to put it in, so pyproject.toml ships it as `pipeline/_queries`.
    """
    here = Path(__file__).resolve().parent
    installed = here / "_queries"
    return installed if installed.is_dir() else here.parent / "queries"


QUERIES_DIR = _queries_dir()


@cache
def sql(name: str) -> str:
    """The text of queries/<name>.sql."""
    return (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")


def quote_sql_string(value: str) -> str:
    """Quote a string as a SQL literal: the one literal built in code is a file path."""
    return "'" + value.replace("'", "''") + "'"
