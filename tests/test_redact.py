"""Secrets never reach the analytics (issue 6): redaction rules and the whole path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.transform.redact import REDACTED, redact_frame, redact_value
from tests.helpers import etl, make_demo, shift_ts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Real-looking credentials of every kind the rules name (none of them is live).
SECRETS = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A",
    "github_pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "openai_key": "sk-proj-" + "Xy7" * 12,
    "anthropic_key": "sk-ant-api03-" + "Q1w2E3r4" * 4,
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google_key": "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy\n"
    "-----END RSA PRIVATE KEY-----",
    "bearer": "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_credentials_are_redacted_in_text_and_json(kind: str) -> None:
    secret = SECRETS[kind]
    text = f"deploying with {secret} now"
    assert secret not in str(redact_value(text))
    assert REDACTED in str(redact_value(text))
    doc = json.dumps({"code": f"run(`{secret}`)", "nested": [{"note": secret}]})
    cleaned = str(redact_value(doc))
    assert secret not in cleaned
    assert json.loads(cleaned)["nested"][0]["note"] == REDACTED


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWD",
        "db_password",
        "secret",
        "client_secret",
        "token",
        "GITHUB_TOKEN",
        "accessToken",
        "api_key",
        "apiKey",
        "x-api-key",
        "Authorization",
        "cookie",
        "private_key",
        "credentials",
        "AWS_SECRET_ACCESS_KEY",
    ],
)
def test_values_under_sensitive_keys_are_redacted(key: str) -> None:
    doc = json.dumps({"outer": {key: "hunter2-value"}, "keep": "visible"})
    cleaned = json.loads(str(redact_value(doc)))
    assert cleaned == {"outer": {key: REDACTED}, "keep": "visible"}
    for text in (f"{key}=hunter2-value", f"{key}: hunter2-value", f'"{key}": "hunter2-value"'):
        out = str(redact_value(text))
        assert "hunter2-value" not in out and key in out


@pytest.mark.parametrize(
    "text",
    [
        "the password is wrong, try again",
        '{"code": "using LinearAlgebra\\nA = rand(3, 3)\\ninv(A)"}',
        '{"progressToken": "tok-17", "max_tokens": 512, "tokenizer": "bpe"}',
        '{"api_key_id": 42, "token_count": 7}',
        "commit 3f2a9c1b7e4d5f60a1b2c3d4e5f60718293a4b5c",
        "session 7b297d0b-0e5e-48ba-a320-cd576d14475b",
        "ERROR: UndefVarError: `foo` not defined in `Main`",
        "sk-short",
        "The author wrote a basic example",
    ],
)
def test_ordinary_text_is_kept_exactly(text: str) -> None:
    assert redact_value(text) == text


def test_redact_frame_only_touches_rows_that_need_it() -> None:
    frame = pl.DataFrame({"a": ['{"x": 1}', '{"password": "p"}', None], "b": [1, 2, 3]})
    out = redact_frame(frame, ("a", "missing"))
    assert out["a"].to_list() == ['{"x": 1}', '{"password":"[REDACTED]"}', None]
    assert out["b"].to_list() == [1, 2, 3]


def _append_secret_traffic(source: Path) -> None:
    """A call, its result, an error and a broken row, each carrying secrets."""
    conn = sqlite3.connect(source)
    newest = conn.execute("SELECT MAX(timestamp) FROM interactions").fetchone()[0]
    args = {
        "code": f"ENV['OPENAI_API_KEY'] = \"{SECRETS['openai_key']}\"",
        "password": "correct horse battery staple",
        "headers": {"Authorization": SECRETS["bearer"]},
    }
    rows = [
        (
            "inbound",
            "request",
            "secret-tool",
            {
                "jsonrpc": "2.0",
                "id": 900001,
                "method": "tools/call",
                "params": {"name": "secret-tool", "arguments": args},
            },
        ),
        (
            "outbound",
            "response",
            "proxy",
            {
                "jsonrpc": "2.0",
                "id": 900001,
                "result": {
                    "content": [
                        {
                            "type": "text",
                            "text": f"token={SECRETS['github_token']} {SECRETS['pem']}",
                        }
                    ]
                },
            },
        ),
        (
            "inbound",
            "request",
            "secret-tool",
            {
                "jsonrpc": "2.0",
                "id": 900002,
                "method": "tools/call",
                "params": {"name": "secret-tool", "arguments": {"api_key": "plain-key-123"}},
            },
        ),
        (
            "outbound",
            "response",
            "proxy",
            {
                "jsonrpc": "2.0",
                "id": 900002,
                "error": {
                    "code": -32603,
                    "message": f"upstream refused {SECRETS['slack_token']}",
                    "data": f"jwt={SECRETS['jwt']} aws={SECRETS['aws_access_key']}",
                },
            },
        ),
        # A call cancelled in the run that first saw it: staged whole, with its
        # cancellation (pipeline/run.py, _stage_cancels).
        (
            "inbound",
            "request",
            "secret-tool",
            {
                "jsonrpc": "2.0",
                "id": 900003,
                "method": "tools/call",
                "params": {"name": "secret-tool", "arguments": {}},
            },
        ),
        (
            "inbound",
            "request",
            "secret-tool",
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 900003, "reason": f"gave up on {SECRETS['anthropic_key']}"},
            },
        ),
    ]
    with conn:
        for i, (direction, kind, session, msg) in enumerate(rows):
            content = json.dumps(msg)
            conn.execute(
                "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
                "request_id, method, content, content_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session,
                    shift_ts(newest, 10 + i),
                    direction,
                    kind,
                    str(msg["id"]) if "id" in msg else None,
                    msg.get("method"),
                    content,
                    len(content),
                ),
            )
        broken = '{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "password": "pw-in-excerpt"'
        conn.execute(
            "INSERT INTO interactions (session_id, timestamp, direction, message_type, "
            "content, content_size) VALUES ('proxy', ?, 'inbound', 'request', ?, ?)",
            (shift_ts(newest, 20), broken, len(broken)),
        )
    conn.close()


def _all_text(db: Path) -> str:
    """Every value of every analytics table, as one string to search."""
    conn = sqlite3.connect(db)
    tables = [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if r[0] not in ("sessions", "events", "interactions")
    ]
    parts = [
        repr(conn.execute(f"SELECT * FROM {t}").fetchall())  # noqa: S608
        for t in tables
    ]
    conn.close()
    return "\n".join(parts)


PLANTED = [*SECRETS.values(), "correct horse battery staple", "plain-key-123", "pw-in-excerpt"]


def test_no_secret_reaches_any_table(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=300, seed=31)
    _append_secret_traffic(source)
    target = tmp_path / "analytics.db"
    etl(source, target=target)
    text = _all_text(target)
    leaked = [s for s in PLANTED if s in text or json.dumps(s)[1:-1] in text]
    assert leaked == []
    conn = sqlite3.connect(target)
    args = conn.execute(
        "SELECT arguments FROM tool_executions WHERE tool_name = 'secret-tool' ORDER BY id"
    ).fetchall()
    assert json.loads(args[0][0])["password"] == REDACTED
    assert "OPENAI_API_KEY" in args[0][0]  # the code around the secret stays readable
    reasons = conn.execute(
        "SELECT status, cancel_reason FROM tool_executions WHERE request_id = '900003'"
    ).fetchall()
    conn.close()
    assert reasons == [("cancelled", f"gave up on {REDACTED}")]


def test_no_redact_keeps_the_text_and_says_so(tmp_path: Path) -> None:
    source, _ = make_demo(tmp_path, calls=300, seed=31)
    _append_secret_traffic(source)
    target = tmp_path / "analytics.db"
    result = CliRunner().invoke(main, ["etl", str(source), "--target", str(target), "--no-redact"])
    assert result.exit_code == 0, result.output
    assert "redaction is off" in result.output
    assert "correct horse battery staple" in _all_text(target)
    # Turning redaction back on rebuilds, so the tables never mix the two.
    summary = etl(source, target=target)
    assert summary.mode == "full"
    assert "correct horse battery staple" not in _all_text(target)
