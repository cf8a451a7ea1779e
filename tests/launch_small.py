"""Run a command from a small process, so the peak RSS it reports is its own.

Linux counts a forked child's peak RSS from its parent's pages: a child of a 400 MB pytest
worker reports at least 400 MB (`ru_maxrss`, RUSAGE_SELF and wait4 alike), however little it
uses. Forking from this small launcher instead makes the figure the child's.

    python tests/launch_small.py CMD ARGS...

Environment: LAUNCH_RLIMIT_AS (bytes, applied to the child), LAUNCH_TIMEOUT_S (the child is
killed after it: a hang guard), LAUNCH_RESULT (a file that receives JSON: code, max_rss in
bytes, timed_out). The child inherits stdin, stdout and stderr; the exit code is the child's.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


def main() -> int:
    """Run argv[1:], wait (bounded), report."""
    limit = int(os.environ.get("LAUNCH_RLIMIT_AS") or 0)
    timeout = float(os.environ.get("LAUNCH_TIMEOUT_S") or 0) or None

    def cap() -> None:
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(sys.argv[1:], preexec_fn=cap if limit else None)
    timed_out = False
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        code = proc.wait()
    max_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result = os.environ.get("LAUNCH_RESULT")
    if result:
        with open(result, "w", encoding="utf-8") as f:
            json.dump({"code": code, "max_rss": max_rss, "timed_out": timed_out}, f)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
