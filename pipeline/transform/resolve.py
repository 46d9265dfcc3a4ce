"""Attribute inbound messages to their MCP client session and their route.

The producer logs an inbound request under its progress token, its tool name or
'proxy' (SPEC §1); the client's real session id is only in the `request.received`
event logged a few ms after the row, with the same method and JSON id. Tools/call
routes come from the `tool.call.start` event (is_proxy_tool) and the client's target
REPL from `session.initialized`.
"""

from __future__ import annotations

import polars as pl

KEY_SEP = "\x1f"
ANY_ROUTE = "*"
PROXY_ROUTE = "proxy"


def _key(method: str, rid: str) -> pl.Expr:
    return pl.concat_str(
        [pl.col(method).fill_null(""), pl.col(rid).fill_null("null")], separator=KEY_SEP
    )


def resolve_sessions(msgs: pl.DataFrame, received: pl.DataFrame, window_ms: int) -> pl.DataFrame:
    """Add `session_id`: the client session of each inbound message.

    msgs: interaction_id, ts_ms, method, id_key, source_session_id, meta_client_name,
    meta_client_version.
    received: request.received events with ev_ts_ms, method, request_id_json, event_session_id.
    The event whose session equals the raw row's session wins (a producer that logs the
    real session needs no guessing); otherwise the nearest event in time; otherwise the
    raw session id. A stateless client's request that found no client session (none,
    or 'proxy') is grouped by its `_meta` clientInfo (stateless_session_id).
    """
    if msgs.is_empty():
        return msgs.with_columns(session_id=pl.col("source_session_id"))
    left = msgs.with_columns(_k=_key("method", "id_key")).sort("ts_ms")
    right = received.select(
        _k=_key("method", "request_id_json"),
        ev_ts_ms=pl.col("ev_ts_ms"),
        ev_session=pl.col("event_session_id"),
        event_id=pl.col("event_id"),
    ).sort("ev_ts_ms", "event_id")
    exact = left.join_asof(
        right.with_columns(_s=pl.col("ev_session")),
        left_on="ts_ms",
        right_on="ev_ts_ms",
        by_left=["_k", "source_session_id"],
        by_right=["_k", "_s"],
        strategy="nearest",
        tolerance=window_ms,
        check_sortedness=False,
    ).select("interaction_id", exact_session=pl.col("ev_session"))
    nearest = left.join_asof(
        right,
        left_on="ts_ms",
        right_on="ev_ts_ms",
        by="_k",
        strategy="nearest",
        tolerance=window_ms,
        check_sortedness=False,
    ).select("interaction_id", nearest_session=pl.col("ev_session"))
    event_session = pl.coalesce("exact_session", "nearest_session")
    return (
        msgs.join(exact, on="interaction_id", how="left")
        .join(nearest, on="interaction_id", how="left")
        .with_columns(
            session_id=pl.when(
                pl.col("meta_client_name").is_not_null()
                & (event_session.is_null() | (event_session == PROXY_ROUTE))
            )
            .then(stateless_session_id())
            .otherwise(pl.coalesce(event_session, pl.col("source_session_id")))
        )
        .drop("exact_session", "nearest_session")
    )


def stateless_session_id() -> pl.Expr:
    """The session of a stateless (2026-07-28) client the proxy gave no session id.

    Such a client has no Mcp-Session-Id, so its requests are logged under 'proxy'; they
    carry clientInfo in `_meta` on every request, and its name and version stand in for
    the session: `stateless:<name>@<version>`.
    """
    return pl.format(
        "stateless:{}@{}", pl.col("meta_client_name"), pl.col("meta_client_version").fill_null("")
    )


def resolve_routes(
    requests: pl.DataFrame,
    tool_starts: pl.DataFrame,
    client_map: pl.DataFrame,
    window_ms: int,
) -> pl.DataFrame:
    """Add `route`, `is_proxy_tool`, `client_name` to resolved requests.

    A tools/call goes to 'proxy' when its tool.call.start says is_proxy_tool, else to the
    client's target REPL ('*' when unknown); every other method is answered by the proxy.
    """
    with_client = requests.join(
        client_map.select("session_id", "client_name", "target_repl"), on="session_id", how="left"
    )
    calls = with_client.sort("ts_ms")
    starts = tool_starts.select(
        ev_ts_ms=pl.col("ev_ts_ms"),
        session_id=pl.col("event_session_id"),
        tool_name=pl.col("tool_name"),
        is_proxy_tool=pl.col("is_proxy_tool"),
    ).sort("ev_ts_ms")
    flagged = calls.join_asof(
        starts,
        left_on="ts_ms",
        right_on="ev_ts_ms",
        by=["session_id", "tool_name"],
        strategy="nearest",
        tolerance=window_ms,
        check_sortedness=False,
    ).drop("ev_ts_ms")
    route = (
        pl.when(pl.col("method") != "tools/call")
        .then(pl.lit(PROXY_ROUTE))
        .when(pl.col("is_proxy_tool").fill_null(False))
        .then(pl.lit(PROXY_ROUTE))
        .otherwise(pl.col("target_repl").fill_null(ANY_ROUTE))
    )
    # A stateless client has no session.initialized: its name is in every request's _meta.
    return flagged.with_columns(
        route=route, client_name=pl.coalesce("client_name", "meta_client_name")
    ).drop("target_repl")
