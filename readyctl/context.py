"""What a check may use: env values, HTTP client, database URL, AWS session, clock, deadline."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readyctl import _proc
from readyctl.errors import DeadlineExceeded
from readyctl.redact import Redactor
from readyctl.secretnames import is_secret, secret_shape

if TYPE_CHECKING:
    import httpx

    from readyctl.config import Config, Environment

Clock = Callable[[], dt.datetime]

# a login answer is a token or two: more than this is not a login answer
LOGIN_MAX_BODY = 1_000_000


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
    """Parse a dotenv file as pydantic-settings' parser (python-dotenv) does, in linear time
    (python-dotenv's regexes backtrack on hostile files: issue 11). A key without a value
    reads as ""."""
    from readyctl import dotenv

    return dotenv.read(path)


class AuthError(Exception):
    """readyctl could not get a session on the target."""


class LoginUnknown(AuthError):
    """The API map has no login route or token: nothing to log in with (not a failure)."""


@dataclasses.dataclass(frozen=True)
class AuthSession:
    """A session on the target: the header to send and the raw tokens (redacted everywhere)."""

    header: str
    header_value: str
    token: str
    refresh_token: str | None
    user: str | None

    def __repr__(self) -> str:
        return f"AuthSession(header={self.header!r}, user={self.user!r})"


def _dig(data: Any, path: str | None) -> Any:
    """Follow a dotted path into JSON."""
    if not path:
        return None
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def login_body(cfg: Any, user: str, password: str) -> dict[str, str]:
    """The login fields: username and password under the map's names, plus constant extras."""
    form = (cfg.body or "json") == "form"
    user_field = cfg.username_field or ("username" if form else "email")
    return {**cfg.extra, user_field: user, cfg.password_field or "password": password}


def token_paths(cfg: Any, data: Any) -> tuple[str | None, str | None]:
    """Where the access and refresh tokens are: the map's paths, else found by key name."""
    from readyctl.apimap import find_token_paths

    found_access, found_refresh = find_token_paths(data)
    access = cfg.access_token or found_access
    refresh = cfg.refresh_token if cfg.refresh_token is not None else found_refresh
    return access, None if refresh == "none" else refresh


class RunState:
    """Shared, thread-safe state of one run: cleanups and lazily built resources."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.auth_lock = threading.Lock()
        self.api_lock = threading.Lock()
        self.api_map_lock = threading.Lock()
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
        self.environ = _proc.environ_copy() if environ is None else dict(environ)
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
        view._clients = []
        return view

    def close_clients(self) -> None:
        """Close the HTTP clients this check opened (the runner calls it when the check ends)."""
        for client in getattr(self, "_clients", []):
            with contextlib.suppress(Exception):  # closing is best effort
                client.close()

    def settings(self, check_id: str | None = None) -> Any:
        """A check's settings (this check's by default) from the config's `checks:` section.

        A check that declares `Settings` gets its frozen, validated model (readyctl.yaml was
        validated against it before the run); a plugin without one gets the plain mapping.
        """
        from readyctl.check import check_class

        cid = check_id or self.check_id or ""
        raw = {**self.managed_defaults().get(cid, {}), **self.config.checks.get(cid, {})}
        cls = check_class(cid)
        if cls is None or cls.Settings is None:
            return raw
        from readyctl.check import settings_problem
        from readyctl.errors import ConfigError

        problem = settings_problem(cls, raw)
        if problem is not None:
            loc, message = problem
            key = ".".join(str(p) for p in ("checks", cid, *loc))
            raise ConfigError(f"{key}: {message}")
        return cls.Settings.model_validate(raw)

    def managed_defaults(self) -> dict[str, dict[str, Any]]:
        """Check settings the managed demo's default shape brings (readyctl.yaml wins)."""
        if self.managed is None or getattr(self.managed, "shape", "default") != "default":
            return {}
        from readyctl.demo.profile import check_defaults

        return check_defaults(getattr(self.managed, "faults", ()))

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
    def example_path(self) -> Path:
        """The documented variables: env.example_file, else .env.example beside the env file
        (or in the project directory when the variables come from the process)."""
        configured = self.config.env.example_file
        if configured:
            return self.resolve(configured)
        env_file = self.environment.env_file
        if env_file and self.environment.env_source in ("file", "both"):
            return self.resolve(env_file).parent / ".env.example"
        return self.base_dir / ".env.example"

    def env_config(self) -> Any:
        """The effective `env:` rules (readyctl.yaml, the preset, else .env.example)."""
        with self.state.lock:
            cached = self.state.cache.get("env_config")
        if cached is not None:
            return cached[0]
        from readyctl.config import resolve_env

        cfg = self.config.env
        if cfg.preset is None and cfg.required is None and self.managed is not None:
            cfg = cfg.model_copy(update={"preset": "counseling"})  # the demo is that API
        example: dict[str, str] | None = None
        path = self.example_path()
        if cfg.preset is None and cfg.required is None and path.is_file():
            try:
                example = read_env_file(path)
            except Exception:  # a broken example file is env.example_drift's finding
                example = None
        present: dict[str, str] | None = None
        env = self.environment
        if example is None and env.env_file and env.env_source in ("file", "both"):
            try:
                present = read_env_file(self.resolve(env.env_file))
            except Exception:  # unreadable: env_source() reports it
                present = None
        resolved = resolve_env(cfg, example, path.name, present)
        with self.state.lock:
            self.state.cache["env_config"] = resolved
        return resolved[0]

    def env_rules_origin(self) -> str:
        """Where the effective env rules came from (for results and reports)."""
        self.env_config()
        with self.state.lock:
            return str(self.state.cache["env_config"][1])

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
        # redaction never trusts a "not a secret" verdict: the redactor also masks every
        # secret-named variable, and a well-known secret shape is masked whatever its rule says
        rules = self.env_config().rules
        secret_names = [n for n, r in rules.items() if r.secret]
        secret_names += [
            n for n, v in values.items() if v and (secret_shape(v) or is_secret(n, v, rules=rules))
        ]
        self.redactor.add_env(values, secret_names)
        with self.state.lock:
            self.state.cache[key] = src
        return src

    # -- clients ------------------------------------------------------------------------
    def http(
        self,
        *,
        timeout: float = 10.0,
        follow_redirects: bool = False,
        max_body: int | None = None,
        max_wire: int | None = None,
    ) -> httpx.Client:
        """An HTTP client for the target's base URL; closed at the end of the run.

        Every response it gives is bounded (readyctl/httpread.py): at most `max_body` decoded
        bytes (default 10 MB) and `max_wire` bytes on the wire (default 10 MB), else
        `BodyTooLarge`; every socket read stops at this check's deadline.
        """
        import httpx

        from readyctl import httpread

        env = self.environment
        verify: Any = True
        if env.ca_bundle:
            import ssl

            verify = ssl.create_default_context(cafile=str(self.resolve(env.ca_bundle)))
        with _proc.ENV_LOCK:  # httpx reads the proxy variables by iterating os.environ
            client = httpx.Client(
                base_url=env.base_url or "",
                verify=verify,
                timeout=self.timeout(timeout),
                follow_redirects=follow_redirects,
                headers={
                    "User-Agent": "readyctl",
                    "Accept-Encoding": httpread.ACCEPT_ENCODING,
                    **env.headers,
                },
            )
        limits = httpread.Limits(
            max_body=max_body or httpread.MAX_BODY_BYTES,
            max_wire=max_wire or httpread.MAX_WIRE_BYTES,
            deadline=self.deadline,
            cancelled=self.state.cancelled,
        )
        httpread.bound_client(client, limits)
        self.add_cleanup(client.close)
        clients = getattr(self, "_clients", None)
        if clients is not None:
            clients.append(client)
        return client

    def auth(self) -> AuthSession:
        """Log in once per run as configured (`auth:`); raises AuthError with a clear reason."""
        # single flight: concurrent checks wait for one login instead of logging in each
        with self.state.auth_lock:
            with self.state.lock:
                cached = self.state.cache.get("auth")
            if isinstance(cached, AuthSession):
                return cached
            if isinstance(cached, AuthError):
                raise cached
            try:
                session = self._login()
            except AuthError as e:
                with self.state.lock:
                    self.state.cache["auth"] = e
                raise
            with self.state.lock:
                self.state.cache["auth"] = session
            return session

    # -- the API map ----------------------------------------------------------------------
    def _cached(self, key: str, lock: threading.Lock, build: Callable[[], Any]) -> Any:
        with lock:
            with self.state.lock:
                cached = self.state.cache.get(key)
            if cached is None:
                cached = build()
                with self.state.lock:
                    self.state.cache[key] = cached
            return cached

    def _map_builder(self) -> Any:
        """Config layers, without network: `api:`, the deprecated `auth:`, demo defaults."""
        from readyctl import apimap

        env = self.environment
        b = apimap.Builder(self.env_name)
        b.add(env.api, apimap.CONFIG)
        if env.auth is not None:
            b.add(apimap.from_deprecated_auth(env.auth), apimap.DEPRECATED_AUTH)
            b.notes.append(
                f"environments.{self.env_name}.auth is deprecated: write it as api.login or "
                "api.token (`readyctl config migrate` shows how)"
            )
        if self.managed is not None and getattr(self.managed, "shape", "default") == "default":
            from readyctl.demo.profile import COUNSELING_MAP

            b.add(COUNSELING_MAP, apimap.DEFAULT)
        return b

    def api_static(self) -> Any:
        """The map from readyctl.yaml (and the managed demo's defaults): no network."""
        return self._cached("api.static", self.state.api_lock, lambda: self._map_builder().build())

    def _discovery_spec(self) -> str:
        api = self.environment.api
        return api.openapi if api is not None else "auto"

    def api_public(self) -> Any:
        """The map after anonymous discovery (OpenAPI, OAuth metadata): what a login needs."""

        def build() -> Any:
            b = self._map_builder()
            try:
                return discover(b)
            except Exception as e:  # discovery never takes a check down: the map stays as is
                b.notes.append(f"discovery stopped: {type(e).__name__}")
                return b

        def discover(b: Any) -> Any:
            from readyctl import apimap, discovery

            spec = self._discovery_spec()
            if spec == "off":
                return b
            if spec != "auto" and "://" not in spec and not spec.startswith("/"):
                found = discovery.from_file(self, spec)  # a file in the repository
                b.notes.extend(found.notes)
                if found.at:
                    b.openapi_at = found.at
                    b.add(found.values, apimap.OPENAPI)
                return b
            if not self.environment.base_url:
                return b
            budget = discovery.Budget()
            b.budget = budget
            found = discovery.anonymous(self, spec, budget)
            b.notes.extend(found.notes)
            if found.at:
                b.openapi_at = found.at
                b.add(found.values, apimap.OPENAPI)
            elif found.hidden:
                b.notes.append("an OpenAPI document answered 401/403 anonymously")
            login = b.values.get("login")
            if "token" not in b.values and (login is None or login.path is None):
                meta = discovery.oauth_metadata(self, budget)
                b.notes.extend(meta.notes)
                if meta.at:
                    b.add(meta.values, apimap.OAUTH_METADATA)
            b.hidden = not found.at
            return b

        return self._cached("api.public", self.state.api_lock, build)

    def api(self) -> Any:
        """The resolved API map (config > discovery > demo defaults), once per run.

        When the OpenAPI document is not public, the usual places are tried again with the
        test session. Never raises on the target's answers; unknown keys stay unknown.
        """

        def build() -> Any:
            from readyctl import apimap, discovery

            b = self.api_public()
            spec = self._discovery_spec()
            if spec != "off" and b.hidden and b.openapi_at is None and self.environment.base_url:
                try:
                    session = self.auth()
                except AuthError:
                    session = None
                if session is not None:
                    try:
                        found = discovery.with_session(
                            self,
                            spec,
                            session.header,
                            session.header_value,
                            b.budget or discovery.Budget(),
                        )
                    except Exception as e:  # as in api_public: the map stays as is
                        b.notes.append(f"discovery with the session stopped: {type(e).__name__}")
                    else:
                        b.notes.extend(found.notes)
                        if found.at:
                            b.openapi_at = found.at
                            b.add(found.values, apimap.OPENAPI)
            try:
                self._settle_discovered(b)
            except Exception as e:  # as above: the map stays as is
                b.notes.append(f"checking discovered routes stopped: {type(e).__name__}")
            return b.build()

        return self._cached("api", self.state.api_map_lock, build)

    def _settle_discovered(self, b: Any) -> None:
        """What discovery implies beyond single routes.

        A found OpenAPI document that describes no refresh operation means the API has no
        refresh flow (`refresh: none`, source openapi); lists from the document are ordered by
        what the test account may read (an admin list answering 403 is not used).
        """
        from readyctl import apimap, discovery

        if b.openapi_at and "refresh" not in b.values:
            b.add({"refresh": "none"}, apimap.OPENAPI)
            b.notes.append(f"{b.openapi_at} describes no token refresh operation: refresh none")
        lists = b.values.get("lists")
        if not lists or b.sources.get("lists") != apimap.OPENAPI or len(lists) < 1:
            return
        try:
            session = self.auth()
        except AuthError:
            return
        budget = b.budget or discovery.Budget()
        ordered, notes = discovery.readable_lists(
            self, list(lists), session.header, session.header_value, budget
        )
        b.notes.extend(notes)
        if ordered:
            b.values["lists"] = ordered
        else:
            del b.values["lists"]
            del b.sources["lists"]

    def _login(self) -> AuthSession:
        import httpx

        api = self.api_public().build()
        if api.token is not None:
            var = api.token.var
            token = self.environ.get(var)
            if not token:
                raise AuthError(f"auth token variable {var} is not set")
            self.redactor.add(token)
            return AuthSession(api.header, f"{api.scheme} {token}".strip(), token, None, None)
        cfg = api.login
        if cfg is None or cfg.path is None:
            raise LoginUnknown(
                f"no login route: set environments.{self.env_name}.api.login (or api.token), "
                "or publish an OpenAPI document or OAuth 2.0 server metadata"
            )
        user = self.environ.get(cfg.username_var)
        password = self.environ.get(cfg.password_var)
        if not user or not password:
            raise AuthError(
                f"auth credentials not set: export {cfg.username_var} and {cfg.password_var}"
            )
        self.redactor.add(password)
        body = login_body(cfg, user, password)
        from readyctl.httpread import DEADLINE, BodyDeadline, BodyTooLarge

        client = self.http(timeout=15, max_body=LOGIN_MAX_BODY)
        # the whole exchange (headers trickled a byte at a time included) within 15 s
        wait = {"extensions": {DEADLINE: time.monotonic() + self.timeout(15)}}
        try:
            if (cfg.body or "json") == "json":
                resp = client.request(cfg.method, cfg.path, json=body, **wait)
            else:
                resp = client.request(cfg.method, cfg.path, data=body, **wait)
        except (BodyTooLarge, BodyDeadline) as e:
            raise AuthError(f"login at {cfg.path}: {e}") from None
        except httpx.TimeoutException as e:
            raise AuthError(
                f"login at {cfg.path} did not answer in time ({type(e).__name__})"
            ) from None
        except httpx.HTTPError as e:
            raise AuthError(f"login request to {cfg.path} failed: {type(e).__name__}") from None
        if resp.status_code >= 400:
            raise AuthError(f"login at {cfg.path} answered {resp.status_code}")
        if resp.is_redirect:
            where = self.redactor.clip(resp.headers.get("location", ""), 120)
            raise AuthError(
                f"login at {cfg.path} answered {resp.status_code} to {where}, not a token"
            )
        try:
            data = resp.json()
        except ValueError:
            raise AuthError(f"login at {cfg.path} did not answer JSON") from None
        access_path, refresh_path = token_paths(cfg, data)
        token = _dig(data, access_path)
        if not isinstance(token, str) or not token:
            where = repr(access_path) if access_path else "any access_token/token key"
            raise AuthError(f"login response has no token at {where}")
        refresh = _dig(data, refresh_path) if refresh_path else None
        self.redactor.add(token)
        if isinstance(refresh, str):
            self.redactor.add(refresh)
        return AuthSession(
            api.header,
            f"{api.scheme} {token}".strip(),
            token,
            refresh if isinstance(refresh, str) else None,
            user,
        )

    def authed_http(self, *, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client carrying the run's session header."""
        session = self.auth()
        client = self.http(timeout=timeout)
        client.headers[session.header] = session.header_value
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
