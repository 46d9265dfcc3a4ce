"""Redaction of secrets before anything is written (on by default; docs/rules.md).

The log holds whatever agents typed: code, file contents, API keys. Every free-text or
JSON column the ETL writes passes through `redact_frame` (pipeline/load.py calls it for
each staged batch), so no table, Parquet file or report built from them can leak what
it removed. Two rules:

- a value under a sensitive key (password, secret, token, api_key, authorization,
  cookie, private_key, credentials, ...) becomes "[REDACTED]", in JSON (any depth) and in
  `key=value` / `key: value` text;
- a value that looks like a credential (AWS access key ids, GitHub and Slack tokens,
  `sk-...` API keys, Google API keys, JWTs, PEM private keys, Bearer/Basic headers)
  becomes "[REDACTED]" wherever it appears.

Polars finds the few rows that may hold a secret (one vectorised regex); only those are
parsed and rewritten in Python. A row with nothing to redact keeps its exact text.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from typing import Any

import polars as pl

REDACTED = "[REDACTED]"

# Words that make a key sensitive (keys are split into words at '_', '-', '.', spaces and
# camelCase humps: AWS_SECRET_ACCESS_KEY, accessToken, x-api-key).
SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "privatekey",
    }
)
SENSITIVE_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
# Keys that contain a sensitive word but are protocol fields, not secrets.
NOT_SECRET_KEYS = frozenset({"progresstoken", "sessionid", "session_id", "mcp-session-id"})

_CREDENTIAL_PATTERNS = [
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic style API keys
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    # PEM private keys, also cut short (excerpts keep the first 200 characters).
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*\Z)",
    r"\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\b[Bb]asic\s+[A-Za-z0-9+/]{12,}=*",
]
CREDENTIAL = re.compile("|".join(f"(?:{p})" for p in _CREDENTIAL_PATTERNS), re.DOTALL)

_KEY_TERMS = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey"
    r"|authorization|cookie|private[_-]?key|credentials?)[A-Za-z0-9_.-]*"
)
# key=value and key: value in free text (logs, error messages, shell lines).
TEXT_ASSIGNMENT = re.compile(
    rf"(?i)\b(?P<key>{_KEY_TERMS})(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
# "key": "value" inside JSON-looking text that could not be parsed (cut excerpts).
JSON_ASSIGNMENT = re.compile(
    rf"(?i)(?P<key>\"{_KEY_TERMS}\")(?P<sep>\s*:\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"?)"
)

# The cheap test Polars runs on every row; a row that fails it has nothing to redact.
PREFILTER = (
    r"(?i)password|passwd|passphrase|secret|token|api[_-]?key|apikey|authoriz|cookie"
    r"|private[_-]?key|credential|auth|AKIA|ASIA|gh[pousr]_|github_pat_|sk-"
    r"|[rs]k_(?:live|test)_|xox[abposr]-|AIza|eyJ|-----BEGIN|bearer|basic "
)


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[\s_.\-]+", spaced.lower()) if w]


def sensitive_key(key: str) -> bool:
    if key.lower() in NOT_SECRET_KEYS:
        return False
    words = _words(key)
    if any(w in SENSITIVE_WORDS for w in words) or "".join(words) in SENSITIVE_WORDS:
        return True
    return any(pair in SENSITIVE_PAIRS for pair in pairwise(words))


def redact_text(text: str) -> str:
    """Free text: credentials anywhere, values of sensitive keys in assignments."""
    text = CREDENTIAL.sub(REDACTED, text)

    def keep_key(match: re.Match[str]) -> str:
        if not sensitive_key(match.group("key").strip('"')):
            return match.group(0)
        value = match.group("value")
        quote = value[0] if value[:1] in ('"', "'") else ""
        return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"

    text = JSON_ASSIGNMENT.sub(keep_key, text)
    return TEXT_ASSIGNMENT.sub(keep_key, text)


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if sensitive_key(k) and not isinstance(v, bool | int | float) and v is not None
                else _redact_json(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_value(text: str | None) -> str | None:
    """One column value: JSON is redacted by structure, anything else as text."""
    if text is None:
        return None
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            cleaned = _redact_json(parsed)
            if cleaned == parsed:
                return text
            return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
    return redact_text(text)


def redact_frame(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """The frame with the given text columns redacted."""
    for column in (c for c in columns if c in frame.columns):
        values = frame[column]
        if values.dtype != pl.String:
            continue
        hits = values.str.contains(PREFILTER).fill_null(False).arg_true()
        if hits.is_empty():
            continue
        cleaned = [redact_value(v) for v in values.gather(hits).to_list()]
        frame = frame.with_columns(values.scatter(hits, cleaned))
    return frame
