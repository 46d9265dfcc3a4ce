"""Pair responses with requests (SPEC §2).

A response belongs to the nearest preceding open request with the same JSON id
(compared as JSON: 1 and "1" differ) on the route it came back from. A response logged
under a REPL id can only answer a call sent to that REPL (or to an unknown route); a
response logged under 'proxy' can answer any call, since the proxy also answers for
REPLs it could not reach.

Taken one response at a time in log order, each response takes the nearest open
candidate: a serial dictatorship. Because every request prefers the earliest response,
that outcome is the unique stable matching, which deferred acceptance finds in rounds
of vectorised as-of joins: each unmatched response proposes to its nearest candidate
below the last one that turned it down, and each request keeps its earliest proposer.
The outcome depends only on rows before each response, so it is the same whether the
log is read in one run or many (open requests are carried between runs).
"""

from __future__ import annotations

import polars as pl

from pipeline.transform.resolve import ANY_ROUTE, PROXY_ROUTE

PAIRS_SCHEMA = {"request_iid": pl.Int64, "response_iid": pl.Int64}


def pair_responses(requests: pl.DataFrame, responses: pl.DataFrame) -> pl.DataFrame:
    """Match responses to requests.

    requests: request_iid, id_key, route (open requests only).
    responses: response_iid, id_key, response_route.
    Returns request_iid, response_iid for every matched pair.
    """
    reqs = (
        requests.select("request_iid", "id_key", "route")
        .filter(pl.col("id_key").is_not_null())
        .sort("request_iid")
    )
    pending = responses.filter(pl.col("id_key").is_not_null()).select(
        "response_iid", "id_key", "response_route", bound=pl.col("response_iid")
    )
    held = pl.DataFrame(schema=PAIRS_SCHEMA)
    if reqs.is_empty() or pending.is_empty():
        return held
    any_route = reqs.filter(pl.col("route") == ANY_ROUTE)
    while not pending.is_empty():
        proposals = _nearest_candidates(pending, reqs, any_route)
        if proposals.is_empty():
            break
        contest = pl.concat([held, proposals.select(PAIRS_SCHEMA.keys())])
        winners = contest.group_by("request_iid").agg(pl.col("response_iid").min())
        held = winners
        losers = contest.join(winners, on=["request_iid", "response_iid"], how="anti")
        # A loser searches again strictly below the request that turned it down.
        pending = losers.join(
            responses.select("response_iid", "id_key", "response_route"),
            on="response_iid",
        ).select("response_iid", "id_key", "response_route", bound=pl.col("request_iid"))
    return held.sort("request_iid")


def _nearest_candidates(
    pending: pl.DataFrame, reqs: pl.DataFrame, any_route: pl.DataFrame
) -> pl.DataFrame:
    """For each pending response, the nearest request below its bound on a compatible route."""
    left = pending.sort("bound")
    right = reqs.rename({"request_iid": "cand"}).with_columns(at=pl.col("cand"))
    via_proxy = left.filter(pl.col("response_route") == PROXY_ROUTE).join_asof(
        right.select("at", "cand", "id_key"),
        left_on="bound",
        right_on="at",
        by="id_key",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    repl_left = left.filter(pl.col("response_route") != PROXY_ROUTE)
    via_route = repl_left.join_asof(
        right.select("at", "cand", "id_key", "route"),
        left_on="bound",
        right_on="at",
        by_left=["id_key", "response_route"],
        by_right=["id_key", "route"],
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    via_any = repl_left.join_asof(
        any_route.rename({"request_iid": "cand"})
        .with_columns(at=pl.col("cand"))
        .select("at", "cand", "id_key"),
        left_on="bound",
        right_on="at",
        by="id_key",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    found = pl.concat(
        [
            via_proxy.select("response_iid", "cand"),
            via_route.select("response_iid", "cand"),
            via_any.select("response_iid", "cand"),
        ]
    )
    return (
        found.filter(pl.col("cand").is_not_null())
        .group_by("response_iid")
        .agg(request_iid=pl.col("cand").max())
        .select("request_iid", "response_iid")
    )
