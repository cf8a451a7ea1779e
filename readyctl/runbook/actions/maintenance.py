"""`uses: maintenance`: switch the target's maintenance mode on or off (a command or an HTTP
call); while it is on, readyctl's own requests pass it with a bypass header."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any

from readyctl.runbook.actions import _common
from readyctl.runbook.actions.base import (
    Action,
    ActionFailed,
    ActionResult,
    StepContext,
    register,
)

KEYS = ("mode", "run", "http", "off", "bypass_header", "bypass_secret_env")
HTTP_KEYS = ("method", "url", "headers", "json")


@register
class Maintenance(Action):
    """Maintenance mode on or off, through a command or an HTTP call.

    `with:` keys:
    - `mode`: `on` or `off` (required).
    - `run`: a shell command that switches it (gets READYCTL_MAINTENANCE=on|off), or
    - `http`: `{method (POST), url (a full URL or a path on the target's base URL), headers,
      json}`: a call that must answer 2xx (the target's CA bundle is trusted).
    - `off`: `{run | http}`: how to switch it off again; the rollback of `mode: on`.
    - `bypass_header` (e.g. X-Maintenance-Bypass) and `bypass_secret_env` (the NAME of the
      variable holding the secret): readyctl's own later requests (smoke, monitor, checks)
      carry this header so they reach the new release while users see the maintenance page.

    Record: `mode`, `how` (command or http), `bypass_header`, `bypass_secret_env` (names
    only, never the secret). Rollback of `on`: the `off` call; of `off`: nothing.
    """

    name = "maintenance"
    touches = "traffic"

    def describe(self, params: Mapping[str, Any]) -> str:
        """What --plan shows."""
        mode = params.get("mode", "?")
        how = "a command" if params.get("run") else "an HTTP call" if params.get("http") else "?"
        bypass = (
            f"; readyctl passes it with {params['bypass_header']}"
            if params.get("bypass_header")
            else ""
        )
        return f"maintenance mode {mode} through {how} (users see the maintenance page){bypass}"

    def run(self, sc: StepContext) -> ActionResult:
        """Switch maintenance on or off."""
        _common.unknown_keys(sc, KEYS)
        mode = _mode(sc.params.get("mode"))
        header = sc.params.get("bypass_header")
        var = sc.params.get("bypass_secret_env")
        if bool(header) != bool(var):
            raise ActionFailed(
                "maintenance: give both bypass_header and bypass_secret_env, or neither"
            )
        if var and mode == "on":
            secret = sc.environ.get(str(var))
            if not secret:
                raise ActionFailed(f"maintenance: variable {var} (the bypass secret) is not set")
            from readyctl.redact import global_redactor

            global_redactor().add(secret)
        how = switch(sc, sc.params, mode)
        record: dict[str, Any] = {
            "mode": mode,
            "how": how,
            "bypass_header": str(header) if header else None,
            "bypass_secret_env": str(var) if var else None,
        }
        if mode == "on" and header:
            sc.bypass_headers[str(header)] = sc.environ[str(var)]
        elif mode == "off" and header:
            sc.bypass_headers.pop(str(header), None)
        bypass = f"; readyctl passes it with {header}" if mode == "on" and header else ""
        return ActionResult(f"maintenance mode {mode} ({how}){bypass}", record=record)

    def rollback(self, sc: StepContext, record: Mapping[str, Any]) -> ActionResult | None:
        """Switch maintenance off again (the `off` spec) after `mode: on`."""
        if record.get("mode") != "on":
            return None
        spec = sc.params.get("off")
        if not isinstance(spec, Mapping) or not (spec.get("run") or spec.get("http")):
            raise ActionFailed("maintenance rollback: no `off: {run | http}` in the step's with:")
        how = switch(sc, spec, "off")
        header = record.get("bypass_header")
        if header:
            sc.bypass_headers.pop(str(header), None)
        return ActionResult(f"maintenance mode off ({how})", record={"mode": "off", "how": how})


def _mode(value: Any) -> str:
    # YAML 1.1 reads a bare on/off as a boolean
    if value is True:
        return "on"
    if value is False:
        return "off"
    mode = str(value or "").strip().lower()
    if mode not in ("on", "off"):
        raise ActionFailed(f"maintenance: with.mode must be on or off, got {value!r}")
    return mode


def switch(sc: StepContext, spec: Mapping[str, Any], mode: str) -> str:
    """Run the spec's command or HTTP call; "command" or "http". ActionFailed when it fails."""
    if spec.get("run") and spec.get("http"):
        raise ActionFailed("maintenance: give either run or http, not both")
    if spec.get("run"):
        _command(sc, spec["run"], mode)
        return "command"
    if spec.get("http"):
        _http(sc, spec["http"], mode)
        return "http"
    raise ActionFailed("maintenance: give run (a command) or http (a call)")


def _command(sc: StepContext, command: Any, mode: str) -> None:
    args: Any = command if isinstance(command, list) else str(command)
    if isinstance(args, list):
        args = [str(a) for a in args]
    env = {**sc.environ, "READYCTL_MAINTENANCE": mode, "READYCTL_RUN_ID": sc.run_id}
    try:
        proc = subprocess.run(
            args,
            shell=isinstance(args, str),
            capture_output=True,
            text=True,
            timeout=max(1.0, sc.timeout_s),
            env=env,
            cwd=str(sc.config_path.parent) if sc.config_path else None,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ActionFailed(
            f"maintenance {mode}: the command did not finish within {sc.timeout_s:.0f} s"
        ) from None
    except OSError as e:
        raise ActionFailed(f"maintenance {mode}: cannot run the command: {e.strerror}") from None
    if proc.returncode != 0:
        lines = [x for x in (proc.stderr or proc.stdout or "").splitlines() if x.strip()]
        tail = lines[-1] if lines else "no output"
        raise ActionFailed(
            f"maintenance {mode}: the command exited with {proc.returncode}: "
            f"{_common.redact(tail, 200)}"
        )


def _http(sc: StepContext, spec: Any, mode: str) -> None:
    import httpx

    if not isinstance(spec, Mapping):
        raise ActionFailed("maintenance: http must be a mapping {method, url, headers, json}")
    extra = sorted(set(spec) - set(HTTP_KEYS))
    if extra:
        raise ActionFailed(f"maintenance: unknown http key {extra[0]!r} ({', '.join(HTTP_KEYS)})")
    t = _common.target(sc)
    url = spec.get("url") or _common.api_map(sc, t).get("maintenance")
    if not url:
        raise ActionFailed("maintenance: http needs url (a full URL or a path on the target)")
    url = _common.absolute(t, str(url))
    headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
    from readyctl.redact import global_redactor

    red = global_redactor()
    for value in headers.values():
        red.add(value)
    method = str(spec.get("method") or "POST").upper()
    try:
        with _common.http_client(sc, t, timeout=min(30.0, max(1.0, sc.timeout_s))) as client:
            resp = client.request(method, url, headers=headers, json=spec.get("json"))
    except httpx.HTTPError as e:
        raise ActionFailed(
            f"maintenance {mode}: {method} {_common.redact(url)} failed: {type(e).__name__}"
        ) from None
    if not 200 <= resp.status_code < 300:
        raise ActionFailed(
            f"maintenance {mode}: {method} {_common.redact(url)} answered {resp.status_code}"
        )
