"""The benchmark of issue 5: the ETL against a pure-SQLite script on large demo logs.

`make bench` (or `python -m bench`) builds and caches the demo databases under
`data/bench/`, measures the bare read, the SQLite baseline, the full ETL and an
incremental ETL after +1% new rows for each size, and writes `bench/RESULTS.md`.
"""
