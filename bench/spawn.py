"""Measuring wrapper: `python bench/spawn.py OUT CMD…` runs CMD and writes its usage to OUT.

Kept to the standard library's smallest modules: its own resident set is the floor of
every measured peak RSS (see bench/measure.py).
"""

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    """Spawn argv[1:], reap it with wait4, write wall time and usage to argv[0]."""
    report, cmd = argv[0], argv[1:]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    doc = {
        "wall_s": wall,
        "maxrss_kib": usage.ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "returncode": os.waitstatus_to_exitcode(status),
    }
    with open(report, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
