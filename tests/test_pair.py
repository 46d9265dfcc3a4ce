"""pair_responses equals matching one response at a time in log order (SPEC §2)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.transform.pair import pair_responses

ROUTES = ["repl-a", "repl-b", "proxy", "*"]
IDS = ["1", "2", '"1"']


def sequential(rows: list[tuple[str, str, str]]) -> set[tuple[int, int]]:
    """The rule as written: each response takes the nearest open compatible request."""
    open_reqs: list[tuple[int, str, str]] = []
    pairs = set()
    for iid, (kind, key, route) in enumerate(rows, start=1):
        if kind == "req":
            open_reqs.append((iid, key, route))
            continue
        fits = [r for r in open_reqs if r[1] == key and (route == "proxy" or r[2] in (route, "*"))]
        if fits:
            best = max(fits)
            open_reqs.remove(best)
            pairs.add((best[0], iid))
    return pairs


def vectorised(rows: list[tuple[str, str, str]]) -> set[tuple[int, int]]:
    reqs = [(i, k, r) for i, (kind, k, r) in enumerate(rows, start=1) if kind == "req"]
    resps = [(i, k, r) for i, (kind, k, r) in enumerate(rows, start=1) if kind == "resp"]
    requests = pl.DataFrame(
        reqs,
        schema={"request_iid": pl.Int64, "id_key": pl.String, "route": pl.String},
        orient="row",
    )
    responses = pl.DataFrame(
        resps,
        schema={"response_iid": pl.Int64, "id_key": pl.String, "response_route": pl.String},
        orient="row",
    )
    return set(pair_responses(requests, responses).iter_rows())


row = st.one_of(
    st.tuples(st.just("req"), st.sampled_from(IDS), st.sampled_from(ROUTES)),
    st.tuples(st.just("resp"), st.sampled_from(IDS), st.sampled_from(ROUTES[:3])),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row, max_size=40))
def test_pairs_equal_one_response_at_a_time(rows: list[tuple[str, str, str]]) -> None:
    got = vectorised(rows)
    assert got == sequential(rows)
    assert len({r for r, _ in got}) == len(got), "a request answers at most once"
    assert all(r < s for r, s in got), "a response follows its request"


def test_ids_compare_as_json_and_routes_matter() -> None:
    rows = [
        ("req", "1", "repl-a"),  # 1
        ("req", '"1"', "repl-b"),  # 2: the string id "1" is another id
        ("req", "1", "repl-b"),  # 3
        ("resp", "1", "repl-a"),  # 4: only 1 is on repl-a
        ("resp", '"1"', "proxy"),  # 5: the proxy may answer for any route
        ("resp", "1", "repl-b"),  # 6
    ]
    assert vectorised(rows) == {(1, 4), (2, 5), (3, 6)}
