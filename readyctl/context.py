"""What a check may use: env values, HTTP client, database URL, AWS session, clock, deadline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readyctl.errors import DeadlineExceeded
from readyctl.redact import Redactor

if TYPE_CHECKING:
    import httpx

    from readyctl.config import Config, Environment

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """The real time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class EnvSource:
    """The variables a target will run with, and where they came from."""

    values: dict[str, str]
    origin: str
    file: Path | None = None


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file with pydantic-settings' parser (python-dotenv)."""
    from dotenv import dotenv_values

    return {k: ("" if v is None else v) for k, v in dotenv_values(path).items()}


class RunState:
    """Shared, thread-safe state of one run: cleanups and lazily built resources."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cleanups: list[Callable[[], None]] = []
        self.cache: dict[str, Any] = {}
        self.cancelled = threading.Event()


class Context:
    """Everything a check may touch; checks never build their own clients."""

    def __init__(
        self,
        *,
        config: Config,
        env_name: str,
        environment: Environment,
        base_dir: Path,
        redactor: Redactor,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
        managed: Any = None,
        state: RunState | None = None,
        deadline: float | None = None,
        check_id: str | None = None,
    ) -> None:
        self.config = config
        self.env_name = env_name
        self.environment = environment
        self.base_dir = base_dir
        self.redactor = redactor
        self._clock = clock
        self.environ = dict(os.environ if environ is None else environ)
        self.managed = managed
        self.state = state or RunState()
        self.deadline = deadline
        self.check_id = check_id

    # -- per check ----------------------------------------------------------------------
    def for_check(self, check_id: str, timeout_s: float, run_deadline: float | None) -> Context:
        """A view of this context with the check's own cooperative deadline."""
        deadline = time.monotonic() + timeout_s
        if run_deadline is not None:
            deadline = min(deadline, run_deadline)
        view = Context.__new__(Context)
        view.__dict__.update(self.__dict__)
        view.deadline = deadline
        view.check_id = check_id
        return view

    def settings(self, check_id: str | None = None) -> dict[str, Any]:
        """This check's settings from the config's `checks:` section."""
        return dict(self.config.checks.get(check_id or self.check_id or "", {}))

    # -- time ---------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The run's clock (tests move it)."""
        return self._clock()

    def remaining(self) -> float:
        """Seconds left before this check's deadline."""
        if self.deadline is None:
            return 3600.0
        return self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        """Raise DeadlineExceeded when the deadline has passed or the run was cancelled."""
        if self.state.cancelled.is_set():
            raise DeadlineExceeded("run cancelled")
        if self.remaining() <= 0:
            raise DeadlineExceeded("deadline passed")

    def timeout(self, wanted: float) -> float:
        """A client timeout no longer than what is left of the deadline."""
        return max(0.05, min(wanted, self.remaining()))

    # -- environment variables ---------------------------------------------------------
    def env_source(self) -> EnvSource:
        """The target's variables: env file, process environment, or both (per config)."""
        key = "env_source"
        with self.state.lock:
            cached = self.state.cache.get(key)
        if cached is not None:
            return cached
        env = self.environment
        values: dict[str, str] = {}
        file: Path | None = None
        origins: list[str] = []
        if env.env_source in ("process", "both") or not env.env_file:
            values.update(self.environ)
            origins.append("process environment")
        if env.env_file and env.env_source in ("file", "both"):
            file = Path(env.env_file)
            if not file.is_absolute():
                file = self.base_dir / file
            values.update(read_env_file(file))
            origins.append(str(file))
        src = EnvSource(values, " + ".join(origins), file)
        secret_names = [n for n, r in self.config.env.rules.items() if r.secret]
        self.redactor.add_env(values, secret_names)
        with self.state.lock:
            self.state.cache[key] = src
        return src

    # -- clients ------------------------------------------------------------------------
    def http(self, *, timeout: float = 10.0, follow_redirects: bool = False) -> httpx.Client:
        """An HTTP client for the target's base URL; closed at the end of the run."""
        import httpx

        env = self.environment
        verify: Any = True
        if env.ca_bundle:
            import ssl

            verify = ssl.create_default_context(cafile=str(self.resolve(env.ca_bundle)))
        client = httpx.Client(
            base_url=env.base_url or "",
            verify=verify,
            timeout=self.timeout(timeout),
            follow_redirects=follow_redirects,
            headers={"User-Agent": "readyctl"},
        )
        self.add_cleanup(client.close)
        return client

    def resolve(self, p: str) -> Path:
        """A config-relative path made absolute."""
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else self.base_dir / path

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        """Run `fn` when the run ends, also on error or Ctrl-C."""
        with self.state.lock:
            self.state.cleanups.append(fn)

    def run_cleanups(self) -> list[str]:
        """Run registered cleanups newest first; return one line per cleanup that failed."""
        problems: list[str] = []
        while True:
            with self.state.lock:
                if not self.state.cleanups:
                    break
                fn = self.state.cleanups.pop()
            try:
                fn()
            except Exception as e:  # cleanup must go on
                problems.append(self.redactor.text(f"cleanup failed: {e}"))
        return problems
