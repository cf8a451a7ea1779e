"""Redaction cost: 1 MB of mixed values, and adversarial single values (issue 11).

Run: python bench/redaction.py [--repeat K]
Prints the median time over K runs to redact 1 MB of mixed values (goal: under 1 s), as a
list of values (`Redactor.value`) and as one text (`Redactor.text`), then the time for each
adversarial 120 KB value (the issue's env value took 28 s before the rewrite) and for a
100 KB waiver reason (21 s before), and for classifying the 120 KB values
(`secretnames.is_secret`), then the time to parse hostile env files (`readyctl.dotenv.parse`:
120 KB of spaces in a value, an unclosed 120 KB quote, 1 MB of `${`). Secret-shaped values are
built at runtime, never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from readyctl import dotenv
from readyctl.redact import Redactor, shape_of
from readyctl.secretnames import is_secret

MB = 1 << 20
KB = 1 << 10


def _tok(rng: random.Random, n: int, alphabet: str = "") -> str:
    alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def mixed_values(rng: random.Random, total: int = MB) -> tuple[list[str], list[str]]:
    """About `total` characters of values a report holds, and the secrets registered for them."""
    known = [_tok(rng, 32) for _ in range(40)] + [_tok(rng, 8) for _ in range(10)]
    makers: list[Callable[[], str]] = [
        lambda: f"postgresql://app:{_tok(rng, 20)}@db.internal:5432/counsel?sslmode=require",
        lambda: "https://admin:" + _tok(rng, 40) + "/x%40y@app.example.org:99999/health",
        lambda: "sk" + "_live_" + _tok(rng, 32),
        lambda: "wh" + "sec_" + _tok(rng, 32),
        lambda: "AK" + "IA" + _tok(rng, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        lambda: "gh" + "p_" + _tok(rng, 36),
        lambda: "xo" + "xb-" + _tok(rng, 12, "0123456789") + "-" + _tok(rng, 24),
        lambda: "ey" + "J" + _tok(rng, 30) + ".eyJ" + _tok(rng, 60) + "." + _tok(rng, 43),
        lambda: f"Authorization: Bearer {_tok(rng, 40)}",
        lambda: f"GET /api/v1/items?page=2&token={_tok(rng, 24)}&x=1",
        lambda: hashlib.sha256(_tok(rng, 8).encode()).hexdigest(),  # fingerprints survive
        lambda: _tok(rng, 12, "0123456789abcdef"),  # alembic revisions survive
        lambda: "2024-06-01T12:00:00Z backup backup-20240601T120000Z-" + _tok(rng, 8),
        lambda: rng.choice(known) + " appeared in " + _tok(rng, 20),
        lambda: "The quick brown fox answered 200 in 12.5 ms " * rng.randint(1, 6),
        lambda: '{"status": "ok", "items": [' + ", ".join(str(i) for i in range(40)) + "]}",
    ]
    values: list[str] = []
    size = 0
    while size < total:
        v = rng.choice(makers)()
        values.append(v)
        size += len(v)
    return values, known


def adversarial(n: int = 120 * KB) -> dict[str, str]:
    """Single values built to make a backtracking pattern go quadratic or worse."""
    return {
        "letters (the issue's env value)": "a" * n,
        "scheme-like run then ://": "a" * (n - 10) + "://x:y",
        "repeated a://": "a://" * (n // 4),
        "repeated a://b:": "a://b:" * (n // 6),
        "userinfo without @": "https://u:" + "p" * (n - 10),
        "repeated @": "https://u:p" + "@" * (n - 11),
        "repeated eyJ-": "eyJ-" * (n // 4),
        "repeated sk-": "sk-" * (n // 3),
        "repeated xoxb-": "xoxb-" * (n // 5),
        "repeated glpat-": "glpat-" * (n // 6),
        "PEM headers without end": "-----BEGIN RSA PRIVATE KEY-----" * (n // 31),
        "bearer spaces": "Bearer " + " " * (n - 7),
        "query ?token=": "?token=" * (n // 7),
    }


def hostile_env_files(n: int = 120 * KB) -> dict[str, str]:
    """Env files that make python-dotenv's parser backtrack or rescan (issue 11)."""
    return {
        "120 KB of spaces in a value": "A=Bearer " + " " * n + "x\n",
        "120 KB without a closing quote": 'A="' + "x" * n,
        "1 MB of ${ fragments": "A=" + "${" * (MB // 2) + "\n",
    }


def _time(
    fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    runs = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        runs.append(clock() - t0)
    return statistics.median(runs)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(11)
    values, known = mixed_values(rng)
    redactor = Redactor(known)
    size = sum(map(len, values))
    joined = "\n".join(values)
    known_n = redactor.count
    print(f"1 MB of mixed values ({len(values)} values, {size / MB:.2f} MB, {known_n} known)")
    cpu = time.process_time  # CPU time: steadier than wall time on a busy machine
    t_list = _time(lambda: redactor.value(values), args.repeat)
    c_list = _time(lambda: redactor.value(values), args.repeat, cpu)
    t_text = _time(lambda: redactor.text(joined), args.repeat)
    c_text = _time(lambda: redactor.text(joined), args.repeat, cpu)
    print("  (goal: under 1000 ms)             wall        cpu")
    print(f"  Redactor.value(list of values): {t_list * 1000:8.1f} ms {c_list * 1000:8.1f} ms")
    print(f"  Redactor.text(one 1 MB string): {t_text * 1000:8.1f} ms {c_text * 1000:8.1f} ms")
    print("adversarial 120 KB values: Redactor.text / secretnames.is_secret")
    for label, value in adversarial().items():
        t_red = _time(lambda v=value: redactor.text(v), args.repeat)
        t_cls = _time(lambda v=value: (shape_of.cache_clear(), is_secret("X", v)), args.repeat)
        print(f"  {label:32} {t_red * 1000:8.1f} ms  {t_cls * 1000:8.1f} ms")
    reason = ("waived until the vendor ships a fix, see https://tracker.example.org/x " * 1500)[
        : 100 * KB
    ]
    t_reason = _time(lambda: redactor.value({"reason": reason, "who": "ops"}), args.repeat)
    print(f"100 KB waiver reason:             {t_reason * 1000:8.1f} ms")
    letters = "w" * (100 * KB)
    t_letters = _time(lambda: redactor.text(letters), args.repeat)
    print(f"100 KB waiver reason (one word):  {t_letters * 1000:8.1f} ms")
    print("hostile env files: readyctl.dotenv.parse (python-dotenv: ~1 s at 8 KB of spaces)")
    for label, text in hostile_env_files().items():
        t_env = _time(lambda t=text: dotenv.parse(t, environ={}), args.repeat)
        print(f"  {label:32} {t_env * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
