"""Load the SQL files under queries/ by name (the file name is the query's name)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"


@cache
def sql(name: str) -> str:
    """The text of queries/<name>.sql."""
    return (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")


def quote_sql_string(value: str) -> str:
    """Quote a string as a SQL literal: the one literal built in code is a file path."""
    return "'" + value.replace("'", "''") + "'"
