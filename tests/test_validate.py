"""validate: passes on what the ETL wrote, fails (naming the problem) on what it did not."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings

from pipeline.cli import main
from tests import test_fuzz as fuzz
from tests.helpers import HOSTILE_INPUT_CHECKS, copy_until, etl, make_demo, new_live_source

CALL = '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"ex","arguments":{}}}'


def _validate(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["validate", "--db", str(db), *args])


def _report(db: Path, *args: str) -> dict[str, object]:
    result = _validate(db, "--format", "json", *args)
    doc: dict[str, object] = json.loads(result.stdout)
    assert doc["ok"] == (result.exit_code == 0), result.output
    return doc


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo log with the analytics beside the raw tables (the default target)."""
    tmp = tmp_path_factory.mktemp("validate")
    source, _ = make_demo(tmp, calls=800, seed=8)  # a seed with request.error events
    etl(source)
    return source


def test_passes_on_a_fresh_etl(loaded: Path) -> None:
    result = _validate(loaded)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("validation passed\n")
    doc = _report(loaded)
    quality = doc["quality"]
    assert isinstance(quality, dict)
    conn = sqlite3.connect(loaded)
    interactions, executions = conn.execute(
        "SELECT (SELECT COUNT(*) FROM interactions), (SELECT COUNT(*) FROM tool_executions)"
    ).fetchone()
    conn.close()
    assert quality["interactions read"] == interactions
    assert quality["interactions waiting past the watermark (next run)"] == 0
    statuses = sum(v for k, v in quality.items() if k.startswith("executions "))
    assert statuses == executions
    # The demo logs a few broken rows on purpose: they are rejects, reported by reason.
    assert quality["malformed JSON (etl_rejects invalid_json)"] > 0
    assert {r["reason"] for r in doc["rejects_by_reason"]} >= {"invalid_json"}  # type: ignore[union-attr,index]


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "consistent"), [(1, False), (2, False), (5, True)])
def test_passes_on_demos_with_a_separate_target(
    tmp_path: Path, seed: int, consistent: bool
) -> None:
    source, _ = make_demo(tmp_path, calls=1000, seed=seed, consistent=consistent)
    target = tmp_path / "analytics.db"
    etl(source, target)
    result = _validate(target)  # the raw tables are found through etl_metadata.source
    assert result.exit_code == 0, result.output
    assert f"against the raw tables of {source.resolve()}" in result.stdout


def test_passes_after_incremental_runs_over_a_live_log(tmp_path: Path) -> None:
    """Runs between which the log grew, the last one leaving provisional rows, then more
    rows the ETL has not read yet: those are waiting, not a mismatch."""
    full, _ = make_demo(tmp_path, calls=600, seed=12)
    live = tmp_path / "live.db"
    new_live_source(live)
    conn = sqlite3.connect(full)
    stamps = [r[0] for r in conn.execute("SELECT timestamp FROM interactions ORDER BY id")]
    conn.close()
    for i, part in enumerate((0.3, 0.6, 0.9)):
        copy_until(full, live, stamps[int(part * (len(stamps) - 1))], events_lag_ms=3 * i)
        etl(live)
    copy_until(full, live, stamps[-1])
    doc = _report(live)
    assert doc["ok"], doc["checks"]
    quality = doc["quality"]
    assert isinstance(quality, dict)
    assert quality["interactions waiting past the watermark (next run)"] > 0
    assert quality["interactions provisional (read, not settled)"] > 0


def _tampered(loaded: Path, tmp_path: Path, statement: str) -> Path:
    db = tmp_path / "tampered.db"
    shutil.copy(loaded, db)
    statement = statement.replace("$FIRST_CALL", FIRST_CALL).replace("$CALL", CALL % "4242")
    conn = sqlite3.connect(db)
    with conn:
        changed = conn.execute(statement).rowcount
    conn.close()
    assert changed == 1, statement
    return db


FIRST_CALL = "(SELECT MIN(interaction_request_id) FROM tool_executions WHERE status = 'success')"


@pytest.mark.parametrize(
    ("statement", "check", "detail"),
    [
        (
            "DELETE FROM tool_executions WHERE interaction_request_id = $FIRST_CALL",
            "calls_accounted",
            "neither an execution nor a reject",
        ),
        (
            "DELETE FROM interactions WHERE id = $FIRST_CALL",
            "executions_have_requests",
            "its request row is not in the source",
        ),
        (
            # A row the ETL read as a notification now says it is a tools/call request.
            "UPDATE interactions SET content = '$CALL' WHERE id = "
            "(SELECT MIN(interaction_id) FROM etl_other_messages)",
            "calls_accounted",
            "tools/call request 4242: neither an execution nor a reject",
        ),
        (
            # 1 and "1" are different JSON-RPC ids.
            "UPDATE tool_executions SET request_id_json = '\"' || request_id_json || '\"' "
            "WHERE interaction_request_id = (SELECT MIN(interaction_request_id) "
            "FROM tool_executions WHERE request_id_type = 'number')",
            "executions_have_requests",
            "is not the row's",
        ),
        (
            "DELETE FROM errors WHERE id = (SELECT MIN(id) FROM errors WHERE error_key LIKE 'i:%')",
            "error_responses_accounted",
            "no errors row and no reject",
        ),
        (
            "DELETE FROM errors WHERE id = (SELECT MIN(id) FROM errors WHERE error_key LIKE 'e:%')",
            "error_events_accounted",
            "request.error: no errors row and no reject",
        ),
        (
            "UPDATE etl_metadata SET value = value + 3 WHERE key = 'interactions_max_id'",
            "watermarks",
            "is beyond the newest interaction of the source",
        ),
        (
            "UPDATE etl_metadata SET value = '2020-01-01 00:00:00.000' "
            "WHERE key = 'newest_timestamp'",
            "watermarks",
            "newest_timestamp 2020-01-01 00:00:00.000 is not the newest timestamp",
        ),
        (
            "UPDATE tool_executions SET status = 'success' WHERE interaction_request_id = "
            "(SELECT MIN(interaction_request_id) FROM tool_executions WHERE status = 'timeout')",
            "execution_outcomes",
            "(success): no response",
        ),
        (
            "UPDATE tool_executions SET duration_ms = duration_ms + 5 "
            "WHERE interaction_request_id = $FIRST_CALL",
            "execution_outcomes",
            "duration_ms is not response_time - request_time",
        ),
        (
            "UPDATE tool_executions SET interaction_response_id = "
            "(SELECT MAX(interaction_response_id) FROM tool_executions) "
            "WHERE interaction_request_id = $FIRST_CALL",
            "responses_exist",
            "answers 2 requests",
        ),
        (
            "INSERT INTO etl_rejects (source_table, source_id, reason) "
            "VALUES ('interactions', 999999, 'invalid_json')",
            "rejects_have_sources",
            "etl_rejects (invalid_json) row of interactions.id 999999: not in the source",
        ),
    ],
    ids=[
        "execution-deleted",
        "request-row-deleted",
        "raw-call-below-watermark",
        "id-type-changed",
        "error-row-deleted",
        "event-error-deleted",
        "watermark-beyond-source",
        "newest-timestamp",
        "status-without-response",
        "duration",
        "response-paired-twice",
        "reject-without-row",
    ],
)
def test_fails_on_tampering(
    loaded: Path, tmp_path: Path, statement: str, check: str, detail: str
) -> None:
    db = _tampered(loaded, tmp_path, statement)
    result = _validate(db)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: validation failed: ")
    assert f"{check} (" in result.stderr
    failing = [line for line in result.stdout.splitlines() if line.startswith("  FAIL")]
    assert any(f" {check}: " in line for line in failing), failing
    assert detail in result.stdout, result.stdout


def test_a_call_logged_after_the_watermark_is_waiting_not_missing(
    loaded: Path, tmp_path: Path
) -> None:
    db = tmp_path / "grown.db"
    shutil.copy(loaded, db)
    conn = sqlite3.connect(db)
    with conn:
        newest = conn.execute("SELECT MAX(timestamp) FROM interactions").fetchone()[0]
        conn.execute(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "request_id, method, content, content_size) "
            "VALUES ('proxy', ?, 'inbound', 'request', '4243', 'tools/call', ?, 80)",
            (newest, CALL % "4243"),
        )
    conn.close()
    doc = _report(db)
    assert doc["ok"] and doc["quality"]["interactions waiting past the watermark (next run)"] == 1  # type: ignore[index]
    etl(db)  # the next run reads it
    doc = _report(db)
    assert doc["ok"] and doc["quality"]["interactions waiting past the watermark (next run)"] == 0  # type: ignore[index]


def test_bad_invocations_exit_2(loaded: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = _validate(missing)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: database {missing} does not exist; give the database the ETL wrote\n"
    )
    raw = tmp_path / "raw.db"
    new_live_source(raw)
    result = _validate(raw)
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: {raw} has no etl_metadata; run `mcp-analytics etl` on it first\n"
    )
    # A separate target whose source has gone: named, with the way out.
    source, _ = make_demo(tmp_path, calls=100, seed=1)
    target = tmp_path / "analytics.db"
    etl(source, target)
    moved = tmp_path / "moved.db"
    source.rename(moved)
    result = _validate(target)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the source {source.resolve()} named in etl_metadata of {target} does not exist; "
        "give the proxy's log with --source\n"
    )
    assert _validate(target, "--source", str(moved)).exit_code == 0


def test_passes_on_the_real_messages(tmp_path: Path) -> None:
    """The 118 real MCP messages others captured (shared/mcp), through the ETL."""
    from tests.test_real_messages import MESSAGES, build_source

    if not MESSAGES.exists():
        pytest.skip(f"{MESSAGES} is missing: clone the shared/ folder beside the repository")
    lines = [json.loads(t) for t in MESSAGES.read_text(encoding="utf-8").splitlines() if t.strip()]
    source, target = tmp_path / "events.db", tmp_path / "analytics.db"
    build_source(source, lines)
    etl(source, target)
    doc = _report(target)
    assert doc["ok"], doc["checks"]


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=HOSTILE_INPUT_CHECKS,
)
@given(rows=fuzz.rows_strategy, events=fuzz.events_strategy)
def test_passes_on_hostile_logs(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, Any]],
    events: list[tuple[str, str, str]],
) -> None:
    """Every wrong shape the fuzz test generates: the independent classification agrees."""
    source = tmp_path_factory.mktemp("hostile") / "events.db"
    fuzz._build(source, rows, events)
    etl(source)
    doc = _report(source)
    assert doc["ok"], [c for c in doc["checks"] if not c["ok"]]  # type: ignore[union-attr,index]
