"""tls.*: certificate, expiry, protocol floor, HTTPS redirect and HSTS against real servers."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from readyctl.checks.tls.https_redirect import PROBE_QUERY

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from readyctl.result import ErrorReason, Status
from tests.checks.tls_servers import OK, endless, raw_server, response
from tests.conftest import demo_context
from tests.helpers import fixed_clock, make_context, results_of, run_checks, statuses
from tests.servers import free_port, serve

pytestmark = pytest.mark.slow

# "/" and the demo map's probes (readyctl/demo/profile.py) with the redirect probe's query
REDIRECT_PATHS = ["/", f"/health/live?{PROBE_QUERY}", f"/health/ready?{PROBE_QUERY}"]
HSTS_PATHS = ["/", "/health/live", "/health/ready"]


def one_line(outcome) -> None:  # type: ignore[no-untyped-def]
    """Every result of the run has a one-line summary."""
    for r in outcome.results:
        assert r.summary and "\n" not in r.summary, r


def env_for(url: str, ca: str | None = None, **kw: object) -> Environment:
    """An environment pointing at a test server."""
    return Environment(base_url=url, ca_bundle=ca, **kw)


def settings(check_id: str, **values: object) -> Config:
    """A config with settings for one check."""
    return Config(checks={check_id: dict(values)})


# -- the demo: healthy and with the transport faults ----------------------------------------
def test_healthy_demo_passes_every_tls_check(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    out = run_checks(demo_context(healthy_demo), only=["tls.*"])
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target
    assert statuses(out, "tls.certificate") == {"chain": "pass", "hostname": "pass"}
    assert statuses(out, "tls.expiry") == {"leaf certificate": "pass"}
    assert statuses(out, "tls.protocols") == {
        "TLS 1.0": "pass",
        "TLS 1.1": "pass",
        "TLS 1.2+": "pass",
    }
    assert statuses(out, "tls.hsts") == dict.fromkeys(HSTS_PATHS, "pass")
    assert statuses(out, "tls.https_redirect") == {p: "pass" for p in REDIRECT_PATHS}
    assert {r.status for r in out.results} == {Status.PASS}
    one_line(out)
    proto = results_of(out, "tls.protocols")
    assert "local server accept TLS 1.0" in proto["TLS 1.0"].evidence["positive_control"]
    hsts = results_of(out, "tls.hsts")["/health/live"]
    assert hsts.measured == 31536000 and hsts.evidence["include_subdomains"] is True
    expiry = results_of(out, "tls.expiry")["leaf certificate"]
    assert expiry.score == 1.0 and expiry.evidence["not_after"].startswith("3000-01-01")
    assert "308" in results_of(out, "tls.https_redirect")["/"].summary


def test_demo_faults_turn_exactly_their_checks_red(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    demo = faulty_demo("no-hsts", "no-https-redirect")
    out = run_checks(demo_context(demo), only=["tls.*"])
    assert statuses(out, "tls.hsts") == dict.fromkeys(HSTS_PATHS, "fail")
    assert "no Strict-Transport-Security" in results_of(out, "tls.hsts")["/health/live"].summary
    assert statuses(out, "tls.https_redirect") == {p: "fail" for p in REDIRECT_PATHS}
    served = results_of(out, "tls.https_redirect")[REDIRECT_PATHS[1]]
    assert "answered 200 over plain HTTP" in served.summary
    assert served.evidence["body_excerpt"]
    for other in ("tls.certificate", "tls.expiry", "tls.protocols"):
        assert set(statuses(out, other).values()) == {"pass"}, other
    one_line(out)


# -- tls.protocols ---------------------------------------------------------------------------
def test_server_accepting_tls10_fails_the_protocol_floor(tmp_path: Path) -> None:
    with raw_server(tls_dir=tmp_path / "tls", legacy=True) as s:
        out = run_checks(
            make_context(environment=env_for(s.url, s.ca_bundle)),
            only=["tls.protocols", "tls.certificate"],
        )
    assert statuses(out, "tls.protocols") == {
        "TLS 1.0": "fail",
        "TLS 1.1": "fail",
        "TLS 1.2+": "pass",
    }
    r = results_of(out, "tls.protocols")["TLS 1.0"]
    assert "accepts TLS 1.0" in r.summary and r.evidence["accepted_cipher_suites"]
    assert statuses(out, "tls.certificate") == {"chain": "pass", "hostname": "pass"}


@contextlib.contextmanager
def modern_only_control(tmp_path: Path) -> Iterator[int]:
    """A 'control' that refuses TLS 1.0: the probe cannot prove anything with it."""
    with raw_server(tls_dir=tmp_path / "ctl") as s:
        yield s.port


@contextlib.contextmanager
def broken_control() -> Iterator[int]:
    """A local OpenSSL that cannot serve TLS 1.0 at all."""
    raise ssl.SSLError("no protocols available")
    yield 0  # pragma: no cover


def test_protocol_refusal_without_positive_control_is_inconclusive(
    healthy_demo,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import readyctl.checks.tls.protocols as protocols

    monkeypatch.setattr(protocols, "legacy_control_server", lambda: modern_only_control(tmp_path))
    out = run_checks(demo_context(healthy_demo), only=["tls.protocols"])
    assert statuses(out, "tls.protocols") == {
        "TLS 1.0": "error",
        "TLS 1.1": "error",
        "TLS 1.2+": "pass",
    }
    r = results_of(out, "tls.protocols")["TLS 1.0"]
    assert r.error_reason is ErrorReason.INCONCLUSIVE and "cannot prove" in r.summary

    monkeypatch.setattr(protocols, "legacy_control_server", broken_control)
    out = run_checks(demo_context(healthy_demo), only=["tls.protocols"])
    assert statuses(out, "tls.protocols")["TLS 1.0"] == "error"
    assert (
        "could not start a local TLS 1.0 server"
        in results_of(out, "tls.protocols")["TLS 1.1"].summary
    )
    # an acceptance needs no control: it is a fail on its own
    with raw_server(tls_dir=tmp_path / "legacy", legacy=True) as s:
        out = run_checks(
            make_context(environment=env_for(s.url, s.ca_bundle)), only=["tls.protocols"]
        )
    assert statuses(out, "tls.protocols")["TLS 1.0"] == "fail"


# -- tls.certificate and handshake failures --------------------------------------------------
async def plain_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A minimal ASGI app: 200 JSON for everything."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_certificate_untrusted_chain_fails_and_blocks_the_probe(tmp_path: Path) -> None:
    with raw_server(tls_dir=tmp_path / "tls") as s:
        out = run_checks(make_context(environment=env_for(s.url)), only=["tls.*"])
    assert statuses(out, "tls.certificate") == {"chain": "fail", "hostname": "pass"}
    chain = results_of(out, "tls.certificate")["chain"]
    assert "unable to get local issuer certificate" in chain.summary
    assert chain.evidence["issuer"]
    # the probe fails too, and the checks needing it name it as the root cause
    assert statuses(out, "http.reachable") == {s.url: "fail"}
    for cid in ("tls.protocols", "tls.hsts"):
        assert statuses(out, cid) == {"*": "blocked"}, cid
    # tls.expiry diagnoses the probe: it reads the leaf whatever the chain says
    assert statuses(out, "tls.expiry") == {"leaf certificate": "pass"}
    one_line(out)


def test_certificate_hostname_mismatch_and_expired_chain(tmp_path: Path) -> None:
    with raw_server(tls_dir=tmp_path / "a", names=("api.counsel.example",)) as s:
        out = run_checks(
            make_context(environment=env_for(s.url, s.ca_bundle)), only=["tls.certificate"]
        )
    assert statuses(out, "tls.certificate") == {"chain": "pass", "hostname": "fail"}
    assert "names api.counsel.example, not 127.0.0.1" in (
        results_of(out, "tls.certificate")["hostname"].summary
    )
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    with raw_server(tls_dir=tmp_path / "b", not_after=past) as s:
        out = run_checks(
            make_context(environment=env_for(s.url, s.ca_bundle)), only=["tls.certificate"]
        )
    assert statuses(out, "tls.certificate") == {"chain": "fail", "hostname": "pass"}
    assert "certificate has expired" in results_of(out, "tls.certificate")["chain"].summary


def test_certificate_against_broken_endpoints_ends_fast_with_one_line_reasons(
    tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    # the reachability probe's own budget is short too: a silent server costs 2 x 2 s there
    cfg = Config(
        checks={"tls.certificate": {"timeout_s": 1}, "http.reachable": {"request_timeout_s": 2}}
    )
    # a plain-HTTP server (uvicorn) on the https URL
    with serve(plain_app) as s:
        url = s.url.replace("http://", "https://")
        out = run_checks(make_context(environment=env_for(url)), only=["tls.certificate"])
    assert statuses(out, "tls.certificate") == {"chain": "fail", "hostname": "blocked"}
    assert "did not complete a TLS handshake" in results_of(out, "tls.certificate")["chain"].summary
    # nobody listening
    env = env_for(f"https://127.0.0.1:{free_port()}")
    out = run_checks(make_context(environment=env), only=["tls.certificate"])
    chain = results_of(out, "tls.certificate")["chain"]
    assert chain.status is Status.ERROR and chain.error_reason is ErrorReason.CONNECTIVITY
    # a server that accepts TCP and never speaks
    with raw_server(silent=True) as s:
        env = env_for(s.url.replace("http://", "https://"))
        out = run_checks(make_context(environment=env, config=cfg), only=["tls.certificate"])
    chain = results_of(out, "tls.certificate")["chain"]
    assert chain.status is Status.ERROR and chain.error_reason is ErrorReason.TIMEOUT
    # discovery stopped at the first unanswered request instead of spending its 30 s
    assert any("did not answer within" in n for n in (out.api_map or {}).get("notes", [])), (
        out.api_map
    )
    # an API that is not on TLS at all; and no base_url
    with raw_server() as s:
        out = run_checks(make_context(environment=env_for(s.url)), only=["tls.*"])
    assert statuses(out, "tls.certificate") == {"chain": "fail"}
    assert "not served over TLS" in results_of(out, "tls.certificate")["chain"].summary
    for cid in ("tls.expiry", "tls.protocols", "tls.hsts"):
        assert set(statuses(out, cid).values()) == {"skip"}, cid
    out = run_checks(make_context(), only=["tls.*"])
    assert {r.status for r in out.results} == {Status.SKIP}
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target


def run_alone(ctx, ids: list[str]):  # type: ignore[no-untyped-def]
    """Run checks through the real runner without their http.reachable probe."""
    from readyctl.registry import load_catalog
    from readyctl.runner import plan, run

    catalog = load_catalog().checks
    chosen = {i: catalog[i] for i in ids}
    return run(ctx, plan(ctx, list(chosen.values()), chosen), deadline_s=30)


def test_every_tls_check_ends_fast_on_endpoints_without_tls(tmp_path: Path) -> None:
    ids = ["tls.certificate", "tls.expiry", "tls.protocols", "tls.hsts"]
    cfg = Config(
        checks={
            "tls.certificate": {"timeout_s": 1},
            "tls.expiry": {"timeout_s": 1},
            "tls.protocols": {"network_timeout_s": 1},
            "tls.hsts": {"timeout_s": 1},
        }
    )
    t0 = time.monotonic()
    with serve(plain_app) as plain, raw_server(silent=True) as silent:
        for s in (plain, silent):
            url = s.url.replace("http://", "https://")
            out = run_alone(make_context(environment=env_for(url), config=cfg), ids)
            got = {r.check_id for r in out.results}
            assert got == set(ids)
            for r in out.results:
                assert r.status in (Status.FAIL, Status.ERROR, Status.BLOCKED), r
            one_line(out)
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target


# -- tls.expiry ------------------------------------------------------------------------------
def test_expiry_fails_on_a_certificate_about_to_expire(tmp_path: Path) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1)
    with raw_server(tls_dir=tmp_path / "tls", not_after=soon) as s:
        out = run_checks(make_context(environment=env_for(s.url, s.ca_bundle)), only=["tls.expiry"])
    assert statuses(out, "http.reachable") == {s.url: "pass"}
    r = results_of(out, "tls.expiry")["leaf certificate"]
    assert r.status is Status.FAIL and r.measured == 3.0 and r.threshold == 7
    assert r.score is not None and r.score < 0.5 and "expires in 3 days" in r.summary


def test_expiry_follows_the_run_clock(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    found = {}
    for when in ("2999-12-10T00:00:00+00:00", "2999-12-28T00:00:00+00:00", "3000-02-01T00:00:00"):
        ctx = demo_context(healthy_demo)
        ctx._clock = fixed_clock(when)
        out = run_checks(ctx, only=["tls.expiry"])
        found[when[:10]] = results_of(out, "tls.expiry")["leaf certificate"]
    assert found["2999-12-10"].status is Status.WARN and found["2999-12-10"].measured == 22.0
    assert found["2999-12-28"].status is Status.FAIL and found["2999-12-28"].measured == 4.0
    assert found["3000-02-01"].status is Status.FAIL and "expired 31 days ago" in (
        found["3000-02-01"].summary
    )


# -- tls.https_redirect ----------------------------------------------------------------------
def test_https_redirect_variants(tmp_path: Path, healthy_demo) -> None:  # type: ignore[no-untyped-def]
    base = healthy_demo.base_url
    big = response(200, body=b"x" * (10 * 1024 * 1024))
    routes = {
        "/ok": response(301, {"Location": f"{base}/ok?a=1"}),
        "/temp": response(302, {"Location": f"{base}/temp"}),
        "/drop": response(308, {"Location": f"{base}/"}),
        "/query": response(308, {"Location": f"{base}/query"}),
        "/elsewhere": response(301, {"Location": "https://evil.example/elsewhere"}),
        "/plain": response(301, {"Location": "http://127.0.0.1:1/plain"}),
        "/loop": response(301, {"Location": "/loop"}),
        "/nolocation": response(301),
        "/upgrade": response(426, {"Upgrade": "TLS/1.2"}),
        "/big": big,
        "/never": endless,
        "/html": response(200, {"X-Note": "<script>alert(1)</script>"}, b"<script>x</script>"),
    }
    paths = ["/ok?a=1", "/temp", "/drop", "/query?page=2", "/elsewhere", "/plain", "/loop"]
    paths += ["/nolocation", "/upgrade", "/big", "/never", "/html"]
    cfg = settings("tls.https_redirect", paths=paths, timeout_s=2)
    t0 = time.monotonic()
    with raw_server(routes) as s:
        out = run_checks(
            demo_context(healthy_demo, config=cfg, http_url=s.url), only=["tls.https_redirect"]
        )
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target
    assert statuses(out, "tls.https_redirect") == {
        "/ok?a=1": "pass",
        "/temp": "warn",
        "/drop": "warn",
        "/query?page=2": "warn",
        "/elsewhere": "warn",
        "/plain": "fail",
        "/loop": "fail",
        "/nolocation": "fail",
        "/upgrade": "warn",
        "/big": "fail",
        "/never": "fail",
        "/html": "fail",
    }
    got = results_of(out, "tls.https_redirect")
    assert "temporary 302" in got["/temp"].summary
    assert "another host (evil.example)" in got["/elsewhere"].summary
    assert len(got["/big"].evidence["body_excerpt"]) <= 300
    assert "<script>" not in got["/html"].summary
    one_line(out)


def test_https_redirect_closed_port_passes_and_missing_url_skips(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    closed = f"http://127.0.0.1:{free_port()}"
    out = run_checks(demo_context(healthy_demo, http_url=closed), only=["tls.https_redirect"])
    assert statuses(out, "tls.https_redirect") == {closed: "pass"}
    assert "refuses connections" in results_of(out, "tls.https_redirect")[closed].summary
    out = run_checks(demo_context(healthy_demo, http_url=None), only=["tls.https_redirect"])
    (r,) = results_of(out, "tls.https_redirect").values()
    assert r.status is Status.SKIP and "no http_url" in r.summary


# -- tls.hsts --------------------------------------------------------------------------------
STS = "Strict-Transport-Security"


def _hsts(value: str) -> bytes:
    return response(200, {STS: value}, b"{}")


def _hang(sock: socket.socket) -> None:
    time.sleep(3)


def test_hsts_variants_and_hostile_answers(tmp_path: Path) -> None:
    routes = {
        "/good": _hsts("max-age=31536000; includeSubDomains; preload"),
        "/quoted": _hsts('max-age="15552000"'),
        "/two": response(200, [(STS, "max-age=31536000"), (STS, "max-age=5")]),
        "/month": _hsts("max-age=2592000"),
        "/minute": _hsts("max-age=60"),
        "/zero": _hsts("max-age=0"),
        "/none": OK,
        "/nan": _hsts("max-age=abc"),
        "/twice": _hsts("max-age=31536000; max-age=1"),
        "/script": _hsts("<script>alert(1)</script>"),
        "/big": response(200, {STS: "max-age=31536000"}, b"x" * (10 * 1024 * 1024)),
        "/never": endless,
        "/malformed": b"HTTP/1.1 200 OK\r\nStrict-Transport-Security max-age=1\r\n\r\n",
        "/hang": _hang,
    }
    cfg = settings("tls.hsts", paths=list(routes), timeout_s=1)
    t0 = time.monotonic()
    with raw_server(routes, tls_dir=tmp_path / "tls") as s:
        out = run_checks(
            make_context(environment=env_for(s.url, s.ca_bundle), config=cfg), only=["tls.hsts"]
        )
    assert time.monotonic() - t0 < 90  # a hang guard, not a speed target
    assert statuses(out, "tls.hsts") == {
        "/good": "pass",
        "/quoted": "pass",
        "/two": "pass",
        "/month": "warn",
        "/minute": "fail",
        "/zero": "fail",
        "/none": "fail",
        "/nan": "fail",
        "/twice": "fail",
        "/script": "fail",
        "/big": "pass",
        "/never": "pass",
        "/malformed": "fail",
        "/hang": "error",
    }
    got = results_of(out, "tls.hsts")
    assert got["/good"].evidence["preload"] is True and "includeSubDomains" in got["/good"].summary
    assert got["/two"].evidence["fields"] == 2
    assert "switches HSTS off" in got["/zero"].summary
    assert "appears twice" in got["/twice"].summary
    assert "<script>" not in got["/script"].summary
    assert got["/script"].evidence["header"] == "<script>alert(1)</script>"
    assert got["/hang"].error_reason is ErrorReason.TIMEOUT
    one_line(out)


# -- another API shape: the paths come from the API map, "/" when it has none ----------------
SHAPE = ApiConfig(openapi="off", health={"live": "/healthz", "ready": "/readyz"})
NO_MAP = ApiConfig(openapi="off")


def test_hsts_judges_the_maps_probes_on_another_api_shape(tmp_path: Path) -> None:
    good = _hsts("max-age=31536000")
    routes: dict[str, Any] = {"/": good, "/healthz": good, "/readyz": good}
    with raw_server(routes, tls_dir=tmp_path / "a") as s:
        env = env_for(s.url, s.ca_bundle, api=SHAPE)
        out = run_checks(make_context(environment=env), only=["tls.hsts"])
    assert statuses(out, "tls.hsts") == {"/": "pass", "/healthz": "pass", "/readyz": "pass"}
    # red: the readiness probe (answered by another layer) goes without the header
    routes["/readyz"] = OK
    with raw_server(routes, tls_dir=tmp_path / "b") as s:
        env = env_for(s.url, s.ca_bundle, api=SHAPE)
        out = run_checks(make_context(environment=env), only=["tls.hsts"])
    assert statuses(out, "tls.hsts") == {"/": "pass", "/healthz": "pass", "/readyz": "fail"}
    one_line(out)


def test_hsts_with_an_empty_map_judges_the_base_url_only(tmp_path: Path) -> None:
    # no guessed /health: "/" only, and a 404 there carries the header like any answer
    routes = {"/": response(404, {STS: "max-age=31536000"}, b"{}")}
    with raw_server(routes, tls_dir=tmp_path / "tls") as s:
        env = env_for(s.url, s.ca_bundle, api=NO_MAP)
        out = run_checks(make_context(environment=env), only=["tls.hsts"])
    assert statuses(out, "tls.hsts") == {"/": "pass"}


def redirector(base: str, plain: tuple[str, ...] = ()) -> Any:
    """Plain HTTP: 308 to the same path and query on `base`; `plain` paths are served as is."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, query = scope["path"], scope["query_string"].decode()
        if path in plain:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"served over plain http"})
            return
        where = f"{base}{path}" + (f"?{query}" if query else "")
        headers = [(b"location", where.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 308, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


def _redirects(tmp_path: Path, api: ApiConfig, plain: tuple[str, ...] = ()) -> dict[str, str]:
    with raw_server(tls_dir=tmp_path) as tls, serve(redirector(tls.url, plain)) as http:
        env = env_for(tls.url, tls.ca_bundle, http_url=http.url, api=api)
        out = run_checks(make_context(environment=env), only=["tls.https_redirect"])
    one_line(out)
    return statuses(out, "tls.https_redirect")


def test_https_redirect_follows_the_map_on_another_api_shape(tmp_path: Path) -> None:
    paths = ["/", f"/healthz?{PROBE_QUERY}", f"/readyz?{PROBE_QUERY}"]
    assert _redirects(tmp_path / "a", SHAPE) == dict.fromkeys(paths, "pass")
    # red: the readiness probe is answered over plain HTTP
    got = _redirects(tmp_path / "b", SHAPE, plain=("/readyz",))
    assert got == {paths[0]: "pass", paths[1]: "pass", paths[2]: "fail"}


def test_https_redirect_with_an_empty_map_probes_the_base_url_only(tmp_path: Path) -> None:
    assert _redirects(tmp_path, NO_MAP) == {"/": "pass", f"/?{PROBE_QUERY}": "pass"}
