"""`readyctl init --alerts`: write six alerting rules and print their readyctl.yaml mapping.

The metric names come from the target's /metrics (with --base-url), else the reference names
(prometheus-client conventions and the standard exporters). readyctl.yaml is not rewritten
(it is the team's, comments included): the `checks:` entries are printed to paste.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from readyctl.alerts.propose import RULES_PATH, propose

MAX_METRICS_BYTES = 5_000_000


class MetricsUnavailable(Exception):
    """The target's /metrics could not be read (one line says why)."""


def fetch_metrics(base_url: str, ca_bundle: Path | None, path: str = "/metrics") -> str:
    """The text of `base_url`'s metrics endpoint (through a Context's bounded client)."""
    import httpx

    from readyctl.config import Config, Environment
    from readyctl.context import Context
    from readyctl.httpread import BodyTooLarge
    from readyctl.redact import global_redactor

    env = Environment(base_url=base_url, ca_bundle=str(ca_bundle) if ca_bundle else None)
    ctx = Context(
        config=Config(),
        env_name="init",
        environment=env,
        base_dir=Path.cwd(),
        redactor=global_redactor(),
    )
    view = ctx.for_check("readyctl.init.alerts", 60, None)
    url = base_url.rstrip("/") + path
    try:
        client = view.http(timeout=15, max_body=MAX_METRICS_BYTES)
        resp = client.get(url)
        if resp.status_code != 200:
            raise MetricsUnavailable(f"GET {url} answered {resp.status_code}")
        return resp.text
    except BodyTooLarge:
        raise MetricsUnavailable(f"GET {url}: more than {MAX_METRICS_BYTES} bytes") from None
    except httpx.HTTPError as e:
        raise MetricsUnavailable(f"GET {url} failed: {type(e).__name__}") from None
    finally:
        ctx.close_clients()


def run(
    root: Path,
    base_url: str | None,
    ca_bundle: Path | None,
    force: bool,
    dry_run: bool,
    say: Callable[[str], None],
    fail: Callable[[str], None],
) -> None:
    """Write `alerts/readyctl-rules.yml` under `root` and print the mapping to paste."""
    text = None
    if base_url is not None:
        try:
            text = fetch_metrics(base_url, ca_bundle)
        except MetricsUnavailable as e:
            fail(str(e))
            return
    proposal = propose(text)
    target = root / RULES_PATH
    source = f"{base_url.rstrip('/')}/metrics" if base_url else "reference metric names"
    say(f"readyctl init --alerts: six rules for seed item 8 from {source}")
    for name, note in proposal.notes.items():
        say(f"  {name:<23} {proposal.conditions[name]['alert']}: {note}")
    rules_text = proposal.rules_yaml()
    if dry_run:
        say(f"\n--- {RULES_PATH} ---")
        say(rules_text.rstrip("\n"))
    elif target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it (the old file is kept as .bak)")
        return
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.with_name(target.name + ".bak").write_bytes(target.read_bytes())
        target.write_text(rules_text, encoding="utf-8")
        say(f"wrote {target}")
    say("\nAdd under `checks:` in readyctl.yaml (paths are relative to it):\n")
    say(proposal.snippet().rstrip("\n"))
    say(
        "\nThen: readyctl check --only 'alerts.*' (needs promtool and amtool: "
        "apt-get install prometheus prometheus-alertmanager)"
    )
    if dry_run:
        say("\n(dry run: nothing written)")
