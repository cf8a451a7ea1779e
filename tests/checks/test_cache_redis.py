"""cache.redis against Debian's redis-server, started by the tests on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readyctl.config import Config, Environment
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import free_port

INSTALL = "apt-get install -y redis-server"
PASSWORD = "Zr7-cache-Secret-q4Lw9"

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason=f"redis-server is not installed ({INSTALL})"
)


@dataclass
class Redis:
    """A running redis-server."""

    port: int
    proc: subprocess.Popen[bytes]
    tls: bool = False
    ca: str | None = None


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start listening")


@contextlib.contextmanager
def redis_server(tmp: Path, *args: str, tls: bool = False) -> Iterator[Redis]:
    """redis-server on a free 127.0.0.1 port in `tmp` (no persistence), stopped afterwards."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = ["redis-server", "--bind", "127.0.0.1", "--dir", str(tmp), "--save", ""]
    cmd += ["--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    ca = None
    if tls:
        import trustme

        authority = trustme.CA()
        cert = authority.issue_cert("127.0.0.1", "localhost")
        ca = str(tmp / "ca.pem")
        authority.cert_pem.write_to_path(ca)
        cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
        cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
        cmd += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        cmd += ["--tls-cert-file", str(tmp / "cert.pem"), "--tls-key-file", str(tmp / "key.pem")]
        cmd += ["--tls-ca-cert-file", ca]
    else:
        cmd += ["--port", str(port)]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(port, proc)
        yield Redis(port, proc, tls, ca)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


HEALTHY = ("--requirepass", PASSWORD, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
EXPOSED = ("--maxmemory", "64mb", "--maxmemory-policy", "noeviction")


def _run(tmp: Path, env_text: str, settings: dict[str, Any] | None = None) -> Any:
    from readyctl.checks.cache.redis import RedisCache

    (tmp / ".env.production").write_text(env_text)
    ctx = make_context(
        config=Config(checks={"cache.redis": settings or {}}),
        environment=Environment(env_file=".env.production", production=True),
        base_dir=tmp,
    )
    return run_checks(ctx, [RedisCache])


def _by_aspect(out: Any) -> dict[str, str]:
    """aspect (last word of the subject, `queue X` kept whole) -> status."""
    got = {}
    for subject, status in statuses(out, "cache.redis").items():
        parts = subject.split(" ", 1)
        got[parts[1] if len(parts) > 1 else subject] = status
    return got


def test_healthy_redis_passes(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", *HEALTHY) as r:
        env = (
            f"REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{r.port}/0\n"
            f"CELERY_BROKER_URL=redis://:{PASSWORD}@queue.internal:6379/0\n"
        )
        out = _run(tmp_path, env)
    got = _by_aspect(out)
    assert got["reachable"] == "pass", results_of(out, "cache.redis")
    assert got["auth"] == "pass"
    assert got["tls"] == "skip"  # this machine: TLS is required elsewhere
    assert got["eviction"] == "pass"
    assert got["queue CELERY_BROKER_URL"] == "pass"
    text = json.dumps([[x.summary, x.reason, dict(x.evidence)] for x in out.results])
    assert PASSWORD not in text
    assert "allkeys-lru" in text and f"127.0.0.1:{r.port}/0" in text


def test_exposed_redis_without_auth_and_noeviction_fails(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", *EXPOSED) as r:
        env = (
            f"REDIS_URL=redis://127.0.0.1:{r.port}/0\nBULL_REDIS_URL=redis://localhost:{r.port}/0\n"
        )
        out = _run(tmp_path, env, {"require_tls": "always"})
    got = _by_aspect(out)
    assert got["reachable"] == "pass"
    assert got["auth"] == "fail"  # the positive control passed: the refusal is missing
    assert got["tls"] == "fail"
    assert got["eviction"] == "fail"
    assert got["queue BULL_REDIS_URL"] == "fail"  # localhost and 127.0.0.1 are one server
    ev = {r.subject.split(" ", 1)[1]: r for r in out.results}["eviction"]
    assert ev.measured == "noeviction"


def test_smells_warn_and_no_maxmemory_fails(tmp_path: Path) -> None:
    with redis_server(
        tmp_path / "r", "--requirepass", PASSWORD, "--maxmemory-policy", "volatile-lru",
        "--maxmemory", "32mb",
    ) as r:  # fmt: skip
        env = (
            f"REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{r.port}/0\n"
            f"QUEUE_REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{r.port}/1\n"
        )
        out = _run(tmp_path, env)
    got = _by_aspect(out)
    assert got["eviction"] == "warn"
    assert got["queue QUEUE_REDIS_URL"] == "pass"  # volatile eviction spares keys without TTL
    with redis_server(
        tmp_path / "r2", "--requirepass", PASSWORD, "--maxmemory-policy", "allkeys-lfu"
    ) as r:
        env = (
            f"REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{r.port}/0\n"
            f"QUEUE_REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{r.port}/1\n"
        )
        out = _run(tmp_path, env)
    got = _by_aspect(out)
    assert got["eviction"] == "fail"  # maxmemory 0: no limit, never evicts
    assert got["queue QUEUE_REDIS_URL"] == "warn"  # allkeys eviction is server-wide


def test_wrong_password_and_missing_password_fail_reachable_and_block(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", *HEALTHY) as r:
        wrong = _run(tmp_path, f"REDIS_URL=redis://:not-the-password@127.0.0.1:{r.port}/0\n")
        missing = _run(tmp_path, f"REDIS_URL=redis://127.0.0.1:{r.port}/0\n")
    got = _by_aspect(wrong)
    assert got["reachable"] == "fail" and got["auth"] == "blocked", got
    assert (
        "refused the credentials"
        in results_of(wrong, "cache.redis")[f"127.0.0.1:{r.port}/0 reachable"].summary
    )
    assert "not-the-password" not in json.dumps([x.summary for x in wrong.results])
    reach = results_of(missing, "cache.redis")[f"127.0.0.1:{r.port}/0 reachable"]
    assert reach.status.value == "fail" and "carries none" in reach.summary


def test_unreachable_redis_fails(tmp_path: Path) -> None:
    port = free_port()
    out = _run(tmp_path, f"REDIS_URL=redis://:{PASSWORD}@127.0.0.1:{port}/0\n")
    got = _by_aspect(out)
    assert got["reachable"] == "fail"
    assert {got[a] for a in ("auth", "tls", "eviction", "queue")} == {"blocked"}


def test_tls_redis_passes_with_its_ca(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", *HEALTHY, tls=True) as r:
        env = f"REDIS_URL=rediss://:{PASSWORD}@127.0.0.1:{r.port}/2\n"
        out = _run(tmp_path, env, {"ca_bundle": r.ca})
        untrusted = _run(tmp_path, env)  # the system CAs do not know the test CA
    got = _by_aspect(out)
    assert got["reachable"] == "pass" and got["tls"] == "pass" and got["auth"] == "pass", got
    assert got["queue"] == "skip"
    reach = results_of(untrusted, "cache.redis")[f"127.0.0.1:{r.port}/2 reachable"]
    assert reach.status.value == "fail" and "TLS" in reach.summary


def test_no_redis_declared_skips_as_not_applicable(tmp_path: Path) -> None:
    out = _run(tmp_path, "NODE_ENV=production\nCACHE_URL=memcached://cache:11211\n")
    r = results_of(out, "cache.redis")["redis"]
    assert r.status.value == "skip" and "not applicable" in (r.reason or "")
    bad = _run(tmp_path, "REDIS_URL=redis://cache.internal:notaport/0\n")
    assert statuses(bad, "cache.redis") == {"REDIS_URL": "fail"}


def test_url_setting_wins_over_the_environment(tmp_path: Path) -> None:
    with redis_server(tmp_path / "r", *HEALTHY) as r:
        out = _run(
            tmp_path,
            "REDIS_URL=redis://127.0.0.1:1/0\n",
            {"url": f"redis://:{PASSWORD}@127.0.0.1:{r.port}/0"},
        )
    assert _by_aspect(out)["reachable"] == "pass"
