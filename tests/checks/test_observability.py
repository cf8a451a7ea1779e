"""observability.metrics and observability.error_tracker: demo, no-metrics, env files, servers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from readyctl.apimap import ApiConfig
from readyctl.config import Config, Environment
from readyctl.context import Context
from tests.checks.test_health import HOSTILE_MAP, hostile  # noqa: F401  (fixture)
from tests.conftest import GOOD_ENV, demo_context
from tests.helpers import make_context, results_of, run_checks, statuses
from tests.servers import serve

NO_TRACKER = "".join(
    line + "\n" for line in GOOD_ENV.splitlines() if not line.startswith("SENTRY_DSN=")
)
METRICS = {"request counts": "pass", "latency histogram": "pass", "errors by route": "pass"}


def test_healthy_demo_passes_metrics_and_error_tracker(healthy_demo) -> None:  # type: ignore[no-untyped-def]
    out = run_checks(demo_context(healthy_demo), only=["observability.*"])
    assert statuses(out, "observability.metrics") == METRICS
    assert statuses(out, "observability.error_tracker") == {"error tracker": "pass"}
    r = results_of(out, "observability.error_tracker")["error tracker"]
    dsn = Path(healthy_demo.env_file).read_text().split("SENTRY_DSN=")[1].split()[0]
    assert dsn not in r.summary and dsn.split("@")[0] not in repr(r)


def test_no_metrics_fault_fails_every_metrics_subject(faulty_demo) -> None:  # type: ignore[no-untyped-def]
    d = faulty_demo("no-metrics")
    out = run_checks(demo_context(d), only=["observability.metrics"])
    got = results_of(out, "observability.metrics")
    assert {s: r.status.value for s, r in got.items()} == dict.fromkeys(METRICS, "fail")
    assert "GET /metrics answered 404" in got["request counts"].summary


def metrics_app(text: str, content_type: str = "text/plain; version=0.0.4") -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(text, media_type=content_type)

    return app


# the demo's routes, named in the API map (discovery off: FastAPI's own document stays out)
DEMO_LIKE = ApiConfig(openapi="off", metrics="/metrics", health={"live": "/health"})


def scrape(app: FastAPI, api: ApiConfig = DEMO_LIKE) -> dict[str, str]:
    with serve(app) as s:
        out = run_checks(
            make_context(environment=Environment(base_url=s.url, api=api)),
            only=["observability.metrics"],
        )
    return statuses(out, "observability.metrics")


def test_partial_metrics_are_judged_per_property() -> None:
    only_counts = "# TYPE app_requests_total counter\napp_requests_total 12\n"
    assert scrape(metrics_app(only_counts)) == {
        "request counts": "pass",
        "latency histogram": "fail",
        "errors by route": "fail",
    }
    sizes = (
        "# TYPE resp_bytes histogram\n"
        'resp_bytes_bucket{le="100"} 1\nresp_bytes_bucket{le="+Inf"} 2\n'
        'hits_total{handler="/a"} 3\n'
    )
    assert scrape(metrics_app(sizes)) == {
        "request counts": "fail",
        "latency histogram": "warn",
        "errors by route": "warn",
    }
    html = "<html><body>metrics</body></html>"
    assert set(scrape(metrics_app(html, "text/html")).values()) == {"fail"}


def test_hostile_metrics_endpoints_end_as_fail_or_error(hostile) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    h = hostile()
    for path in ("/never", "/malformed", "/script", "/loop"):
        settings = {"path": path, "warmup_path": None, "request_timeout_s": 1}
        cfg = Config(checks={"observability.metrics": settings})
        out = run_checks(
            make_context(config=cfg, environment=Environment(base_url=h.url, api=HOSTILE_MAP)),
            only=["observability.metrics"],
            deadline_s=40,
        )
        got = results_of(out, "observability.metrics")
        assert {r.status.value for r in got.values()} <= {"fail", "error"}, path


FULL = (
    "# TYPE http_requests_total counter\n"
    'http_requests_total{route="/orders",method="GET",status="200"} 3\n'
    "# TYPE http_request_duration_seconds histogram\n"
    'http_request_duration_seconds_bucket{route="/orders",le="0.1"} 3\n'
    'http_request_duration_seconds_bucket{route="/orders",le="+Inf"} 3\n'
)


def shaped_app(text: str) -> FastAPI:
    """Another API shape: metrics at /internal/metrics, liveness at /healthz, no /metrics."""
    app = FastAPI(openapi_url=None)
    app.state.seen = []

    @app.get("/healthz")
    def live() -> dict[str, str]:
        app.state.seen.append("/healthz")
        return {"status": "ok"}

    @app.get("/internal/metrics")
    def metrics() -> PlainTextResponse:
        app.state.seen.append("/internal/metrics")
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app


SHAPE = ApiConfig(openapi="off", metrics="/internal/metrics", health={"live": "/healthz"})


def test_metrics_follow_the_map_on_another_api_shape() -> None:
    app = shaped_app(FULL)
    assert scrape(app, SHAPE) == METRICS
    # the warm-up went to the map's public path, before the scrape
    assert app.state.seen[-2:] == ["/healthz", "/internal/metrics"]
    # red: the endpoint counts requests but has neither a latency histogram nor route labels
    assert scrape(
        shaped_app("# TYPE app_requests_total counter\napp_requests_total 12\n"), SHAPE
    ) == {
        "request counts": "pass",
        "latency histogram": "fail",
        "errors by route": "fail",
    }


def test_metrics_skip_naming_the_key_when_the_map_has_none() -> None:
    app = shaped_app(FULL)
    with serve(app) as s:
        env = Environment(base_url=s.url, api=ApiConfig(openapi="off"))
        out = run_checks(make_context(environment=env), only=["observability.metrics"])
    (r,) = results_of(out, "observability.metrics").values()
    assert r.status.value == "skip" and "environments.default.api.metrics" in r.reason
    assert "/internal/metrics" not in app.state.seen  # nothing guessed, nothing scraped


def env_ctx(tmp_path: Path, text: str, *, production: bool = True) -> Context:
    path = tmp_path / ".env.production"
    path.write_text(text)
    env = Environment(env_file=str(path), production=production)
    return make_context(environment=env, base_dir=tmp_path)


def test_error_tracker_missing_malformed_and_non_production(tmp_path: Path) -> None:
    out = run_checks(env_ctx(tmp_path, NO_TRACKER), only=["observability.error_tracker"])
    r = results_of(out, "observability.error_tracker")["error tracker"]
    assert r.status.value == "fail" and "SENTRY_DSN" in r.summary
    bad = NO_TRACKER + "SENTRY_DSN=https://sentry.example.org/\n"
    out = run_checks(env_ctx(tmp_path, bad), only=["observability.error_tracker"])
    r = results_of(out, "observability.error_tracker")["error tracker"]
    assert r.status.value == "fail" and "no public key" in r.summary
    good = NO_TRACKER + "SENTRY_DSN=https://a1b2c3d4e5f6@o1.ingest.sentry.io/42\n"
    out = run_checks(env_ctx(tmp_path, good), only=["observability.error_tracker"])
    r = results_of(out, "observability.error_tracker")["error tracker"]
    assert r.status.value == "pass" and "a1b2c3d4e5f6" not in r.summary
    out = run_checks(
        env_ctx(tmp_path, GOOD_ENV, production=False),
        only=["observability.error_tracker"],
    )
    assert statuses(out, "observability.error_tracker") == {"error tracker": "skip"}
