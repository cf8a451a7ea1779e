"""Derive readyctl's API map from an OpenAPI document (3.0, 3.1 or Swagger 2.0): pure, no network.

`parse_document` reads the text (JSON or YAML) and refuses what is not an OpenAPI document;
`derive_map` turns it into the plain dict readyctl uses instead of asking the user for routes
(login, me, refresh, lists, health, ...). The map only holds keys with evidence in the
document: a key is absent rather than guessed.

All work is bounded, since the document comes from the target: at most 20 MB of text; YAML
aliases may not expand a document beyond its size; local `$ref`s are followed at most 32 hops
deep, with cycles cut and every schema flattened once (a "billion laughs" of references costs
linear time); external `$ref`s are never fetched, here or in the validator; and validation
stops after `VALIDATION_SECONDS`.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from readyctl.errors import ReadyctlError

# where APIs usually publish their document, tried in order
CANDIDATE_PATHS: tuple[str, ...] = (
    "/openapi.json",  # FastAPI, LoopBack, Django Ninja (under /api)
    "/api/openapi.json",
    "/api/v1/openapi.json",
    "/api/v2/openapi.json",
    "/docs-json",  # NestJS: SwaggerModule.setup("docs") serves /docs-json
    "/api-docs-json",
    "/api/docs-json",
    "/swagger.json",  # hapi-swagger, drf-yasg
    "/api/swagger.json",
    "/v3/api-docs",  # springdoc-openapi
    "/v2/api-docs",  # springfox
    "/api-docs",  # swagger-ui-express setups, springdoc with a custom path
    "/openapi.yaml",
    "/swagger/v1/swagger.json",  # ASP.NET Core (Swashbuckle)
    "/api-json",  # NestJS: SwaggerModule.setup("api") serves /api-json
    "/swagger-json",  # NestJS: SwaggerModule.setup("swagger")
    "/openapi/v1.json",  # ASP.NET Core 9 (Microsoft.AspNetCore.OpenApi)
    "/swagger/doc.json",  # Go swaggo
    "/q/openapi",  # Quarkus (SmallRye OpenAPI)
    "/api/schema/",  # drf-spectacular
    "/apispec_1.json",  # Flasgger
    "/openapi.yml",
    "/swagger.yaml",
)

MAX_DOCUMENT_BYTES = 20 * 2**20
MAX_REF_DEPTH = 32
VALIDATION_SECONDS = 5.0
MAX_PROBLEMS = 5
MAX_PROBLEM_CHARS = 200

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_VERSION_SEGMENT = re.compile(r"v\d+", re.IGNORECASE)
_SCHEMA_BUDGET = 200_000  # resolver steps per derive_map call

# property and parameter names, compared lower-case without "_" and "-"
_PASSWORD_NAMES = ("password", "pass", "passwd")
_USERNAME_NAMES = (
    "username",
    "email",
    "login",
    "user",
    "phone",
    "emailaddress",
    "phonenumber",
    "mobile",
    "identifier",
)
_ACCESS_NAMES = {
    "accesstoken": 0,
    "access": 1,
    "token": 2,
    "authtoken": 2,
    "bearertoken": 2,
    "jwt": 3,
    "idtoken": 4,
}
_REFRESH_NAMES = {"refreshtoken": 0, "refresh": 1}
_REFRESH_FIELDS = ("refreshtoken", "refresh", "token")
_PAGE_PARAMS = ("page", "pagenumber", "pageno", "pagenum", "pageindex")
_SIZE_PARAMS = ("limit", "size", "perpage", "pagesize", "take", "pagelimit")
_OFFSET_PARAMS = ("offset", "skip", "start")
_ITEM_NAMES = ("items", "data", "results", "content", "records", "rows", "list", "entries", "hits")
_TOTAL_NAMES = (
    "total",
    "count",
    "totalcount",
    "totalitems",
    "totalelements",
    "totalresults",
    "totalrecords",
)
_READY_WORDS = frozenset({"ready", "readyz", "readiness"})
_LIVE_WORDS = frozenset({"live", "livez", "liveness"})
_HEALTH_WORDS = frozenset({"health", "healthz", "healthcheck"})
# segments that may precede a bare /ping or /status for it to count as a health probe
_PROBE_PARENTS = frozenset(
    {"", "api", "_", "internal", "system", "sys", "monitoring", "monitor", "utils", "util"}
    | {"management", "actuator", "ops", "health"}
)
_ME_SUFFIXES = ("/me", "/whoami", "/user", "/profile", "/account")
_LOGIN_WORDS = re.compile(r"login|log-in|log_in|signin|sign-in|sign_in|token|session|authenticate")
_NOT_LOGIN = re.compile(
    r"register|signup|sign-up|sign_up|reset|change|forgot|recover|password|verify|confirm|invite"
)
_REGISTER_WORDS = re.compile(r"register|signup|sign-up|sign_up")
_REGISTER_FOLLOWUPS = re.compile(r"verify|confirm|resend|complete|check")
_LOGOUT_WORDS = re.compile(r"logout|log-out|log_out|signout|sign-out|sign_out")
_EXPORT_WORDS = re.compile(r"export|takeout|download|gdpr|portability|my-data|mydata|my_data")
_VERIFY_EMAIL = re.compile(r"verif|confirm")
_ACCOUNT_SUFFIXES = ("/me", "/account", "/profile", "/user")


class OpenApiError(ReadyctlError, ValueError):
    """The text is not an OpenAPI document readyctl can read; the message is one line."""

    def __init__(self, message: object = "") -> None:
        super().__init__(_LINE_BREAKS.sub(" ", str(message)))


@dataclass(frozen=True)
class Document:
    """A parsed OpenAPI document: its version, its content and what the validator found."""

    version: str  # "2.0", "3.0.x", "3.1.x"
    raw: dict[str, Any]
    problems: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- parsing


def parse_document(text: str | bytes, *, source: str) -> Document:
    """Parse an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML) named `source` in messages.

    Raises OpenApiError when it is too big, not JSON or YAML, not a mapping, not OpenAPI or
    has no paths. Validation problems never raise: the first few land in `problems`.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise OpenApiError(_too_big(source))
        if text.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise OpenApiError(f"{source}: the OpenAPI document is UTF-16 text; serve it as UTF-8")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise OpenApiError(
                f"{source}: the OpenAPI document is not UTF-8 (byte 0x{text[e.start]:02x} at "
                f"offset {e.start}); serve it as UTF-8 JSON or YAML"
            ) from None
    elif (
        len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES
    ):
        raise OpenApiError(_too_big(source))
    text = text.removeprefix("\ufeff")

    data = _load(text, source)
    if not isinstance(data, dict):
        raise OpenApiError(
            f"{source}: the OpenAPI document is {_kind_of(data)}, not a mapping; point readyctl "
            "at the JSON or YAML OpenAPI document itself"
        )
    version = _version_of(data, source)
    paths = data.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise OpenApiError(
            f"{source}: the OpenAPI document has no paths; readyctl derives the routes from "
            "them, so publish the document with its paths"
        )
    return Document(version=version, raw=data, problems=tuple(_validate(data, version)))


def _too_big(source: str) -> str:
    return (
        f"{source}: the OpenAPI document is larger than {MAX_DOCUMENT_BYTES // 2**20} MB; "
        "is this the right document?"
    )


def _kind_of(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "plain text"
    return f"a single {type(value).__name__}"


def _load(text: str, source: str) -> Any:
    """The JSON or YAML value of `text` (plain JSON types only), or a one-line OpenApiError."""
    head = text.lstrip()[:200].lower()
    if head.startswith("<"):
        raise OpenApiError(
            f"{source}: this is an HTML or XML page, not an OpenAPI document; point readyctl "
            "at the JSON or YAML document (e.g. /openapi.json), not at the docs UI"
        )
    json_error = ""
    if head.startswith(("{", "[")):
        try:
            return json.loads(text)
        except RecursionError:
            raise OpenApiError(_too_deep(source)) from None
        except ValueError as e:
            if isinstance(e, json.JSONDecodeError):
                json_error = f"{e.msg} at line {e.lineno}, column {e.colno}"
            else:
                json_error = str(e)
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        value = yaml.load(text, Loader=loader)
    except RecursionError:
        raise OpenApiError(_too_deep(source)) from None
    except yaml.YAMLError as e:
        detail = json_error or _yaml_detail(e)
        raise OpenApiError(
            f"{source}: not valid JSON or YAML ({detail}); point readyctl at the OpenAPI "
            "document itself"
        ) from None
    except ValueError as e:  # e.g. an integer too long to convert
        raise OpenApiError(f"{source}: not valid JSON or YAML ({e})") from None
    budget = [len(text) + 10_000]
    try:
        return _plain(value, budget, 0)
    except _TooMuch as e:
        raise OpenApiError(
            _too_deep(source)
            if e.why == "depth"
            else f"{source}: the OpenAPI document expands to more nodes than its size allows "
            "(YAML aliases?); serve a document without alias expansion tricks"
        ) from None


def _too_deep(source: str) -> str:
    return f"{source}: the OpenAPI document nests too deeply to be a real API description"


def _yaml_detail(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


class _TooMuch(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


_MAX_NESTING = 400


def _plain(value: Any, budget: list[int], depth: int) -> Any:
    """A copy of a YAML value with JSON types only (string keys), within a node budget."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooMuch("size")
    if depth > _MAX_NESTING:
        raise _TooMuch("depth")
    if isinstance(value, dict):
        return {_key(k): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, budget, depth + 1) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    isoformat = getattr(key, "isoformat", None)
    return isoformat() if callable(isoformat) else str(key)


def _version_of(data: dict[str, Any], source: str) -> str:
    openapi = data.get("openapi")
    swagger = data.get("swagger")
    if isinstance(openapi, str | int | float) and not isinstance(openapi, bool):
        version = str(openapi).strip()
        if version.startswith("3."):
            return version
        raise OpenApiError(
            f"{source}: OpenAPI {version} is not supported; readyctl reads OpenAPI 3.x and "
            "Swagger 2.0 documents"
        )
    if isinstance(swagger, str | int | float) and not isinstance(swagger, bool):
        if str(swagger).strip() in ("2.0", "2"):
            return "2.0"
        raise OpenApiError(
            f"{source}: Swagger {swagger} is not supported; readyctl reads Swagger 2.0 and "
            "OpenAPI 3.x documents (convert it with swagger2openapi or the Swagger editor)"
        )
    raise OpenApiError(
        f'{source}: not an OpenAPI document: it has neither `openapi: 3.x` nor `swagger: "2.0"` '
        "at the top; point readyctl at the API's OpenAPI or Swagger 2.0 document"
    )


# -------------------------------------------------------------------------- validation


class _OutOfTime(BaseException):
    """Raised into the validator when its time is up (a BaseException: never swallowed)."""


def _validate(raw: dict[str, Any], version: str) -> list[str]:
    """The validator's first problems with `raw`, each one line; never raises."""
    try:
        # lazy: the validator takes about half a second to import
        import openapi_spec_validator as osv
    except ImportError:
        return ["not validated: openapi-spec-validator is not installed"]
    if version == "2.0":
        base: type = osv.OpenAPIV2SpecValidator
    elif version.startswith("3.0"):
        base = osv.OpenAPIV30SpecValidator
    elif version.startswith("3.2") and hasattr(osv, "OpenAPIV32SpecValidator"):
        base = osv.OpenAPIV32SpecValidator
    else:
        base = osv.OpenAPIV31SpecValidator
    # a refusing handler for every URL scheme: an external $ref is reported, never fetched
    # (jsonschema-path falls back to requests/urlopen for a scheme it has no handler for)
    validator_cls = type(f"Local{base.__name__}", (base,), {"resolver_handlers": _NoFetching()})

    problems: list[str] = []
    deadline = time.monotonic() + VALIDATION_SECONDS

    def stop_when_late(frame: FrameType, event: str, arg: Any) -> None:
        # a "call" event per Python function call; None: no line-by-line tracing
        if time.monotonic() > deadline:
            raise _OutOfTime
        return None

    previous = sys.gettrace()
    sys.settrace(stop_when_late)
    try:
        for error in validator_cls(raw).iter_errors():
            problems.append(_clip(_error_text(error)))
            if len(problems) >= MAX_PROBLEMS:
                break
    except _OutOfTime:
        problems.append(
            f"not fully validated: validation stopped after {VALIDATION_SECONDS:g} s "
            "(a large or hostile document)"
        )
    except RecursionError:
        problems.append(
            "not fully validated: schemas nest too deeply for the validator ($ref chains or cycles)"
        )
    except Exception as e:  # the validator's own failure is a finding, never a crash
        message = str(e).split(" within ", 1)[0]
        problems.append(_clip(f"not fully validated: {type(e).__name__}: {message}"))
    finally:
        sys.settrace(previous)
        _forget_validators(base)
    return problems[:MAX_PROBLEMS]


class _NoFetching(dict[str, Callable[[str], Any]]):
    """Resolver handlers that claim every URL scheme, and refuse to fetch any of them."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_to_fetch


def _refuse_to_fetch(uri: str) -> Any:
    raise LookupError(f"{uri} is not fetched: readyctl reads only the document it was given")


def _forget_validators(cls: type) -> None:
    """Drop the validator's class-level iter_errors cache (it keeps every document alive)."""
    fn: Any = getattr(cls, "iter_errors", None)
    for _ in range(5):
        if fn is None or hasattr(fn, "cache_clear"):
            break
        fn = getattr(fn, "__wrapped__", None)
    if fn is not None and hasattr(fn, "cache_clear"):
        fn.cache_clear()


def _error_text(error: Exception) -> str:
    """`where: what` for a validator error, from its most relevant cause (anyOf, oneOf)."""
    try:
        from jsonschema.exceptions import best_match

        error = best_match([error]) or error  # type: ignore[list-item]
    except Exception:  # ImportError, or an error best_match cannot rank: keep it as it is
        pass
    message = str(getattr(error, "message", None) or error)
    instance = repr(getattr(error, "instance", None))
    if len(instance) > 40 and message.startswith(instance):  # "{...huge...} is not valid ..."
        message = "the value" + message[len(instance) :]
    where = ""
    if getattr(error, "absolute_path", None):
        try:
            where = str(error.json_path)  # type: ignore[attr-defined]
        except Exception:
            where = "/".join(str(p) for p in error.absolute_path)  # type: ignore[attr-defined]
    if len(where) > 100:
        where = "…" + where[-99:]
    return f"{where}: {message}" if where else message


def _clip(text: str) -> str:
    text = _LINE_BREAKS.sub(" ", text).strip()
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 1] + "…"


# ---------------------------------------------------------------------------- resolver


@dataclass
class _View:
    """What a schema says once refs, allOf and the first object oneOf/anyOf are merged."""

    types: frozenset[str] = frozenset()
    properties: dict[str, Any] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    items: Any = None

    @property
    def is_array(self) -> bool:
        return "array" in self.types or (not self.types and self.items is not None)

    @property
    def is_object(self) -> bool:
        return "object" in self.types or (not self.types and bool(self.properties))

    @property
    def is_container(self) -> bool:
        return self.is_array or self.is_object

    @property
    def is_empty(self) -> bool:
        return not (self.types or self.properties or self.items is not None)

    def merged(self, other: _View) -> _View:
        properties = dict(self.properties)
        properties.update(other.properties)
        return _View(
            types=self.types | other.types,
            properties=properties,
            required=self.required | other.required,
            items=self.items if self.items is not None else other.items,
        )


_EMPTY = _View()
_SCHEMA_KEYS = frozenset({"type", "properties", "items", "allOf", "oneOf", "anyOf", "required"})


class _Resolver:
    """Local $ref resolution and schema flattening, bounded in depth and total steps."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.steps = _SCHEMA_BUDGET
        self.truncated = False  # a limit cut the view being computed short
        self._views: dict[int, _View] = {}
        self._busy: set[int] = set()

    def _spend(self) -> bool:
        self.steps -= 1
        return self.steps >= 0

    def _pointer(self, ref: str) -> Any:
        """The node a local `#/...` reference names; None for external or broken ones."""
        if not ref.startswith("#/"):
            return None
        node: Any = self.root
        for part in unquote(ref[2:]).split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def follow(self, node: Any, hops: int = MAX_REF_DEPTH) -> tuple[Any, int]:
        """(`node` with its chain of local $refs followed, hops used); None when unresolvable.

        At most `hops` references are followed; a cycle, an external or a broken reference,
        or a longer chain, gives None.
        """
        seen: set[int] = set()
        used = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if used >= hops:
                self.truncated = True
                return None, used
            if not isinstance(ref, str) or id(node) in seen or not self._spend():
                return None, used
            seen.add(id(node))
            used += 1
            node = self._pointer(ref)
        return node, used

    def deref(self, node: Any) -> Any:
        """`node` with its chain of local $refs followed (at most 32); None when unresolvable."""
        return self.follow(node)[0]

    def view(self, node: Any, hops: int = 0, nesting: int = 0) -> _View:
        """The flattened view of a schema (an empty view when unknown or over budget).

        `hops` counts the $refs followed to get here (at most 32), `nesting` the allOf, oneOf
        and anyOf levels (at most 64).
        """
        if nesting > 2 * MAX_REF_DEPTH or not self._spend():
            self.truncated = True
            return _EMPTY
        if isinstance(node, dict) and "$ref" in node:
            target, used = self.follow(node, MAX_REF_DEPTH - hops)
            result = self.view(target, hops + used, nesting) if target is not None else _EMPTY
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if _SCHEMA_KEYS.intersection(siblings):  # 3.1: $ref beside other keywords
                result = result.merged(self.view(siblings, hops, nesting + 1))
            return result
        if not isinstance(node, dict):
            return _EMPTY
        key = id(node)
        if key in self._views:
            return self._views[key]
        if key in self._busy:  # a cycle through allOf/oneOf/anyOf
            return _EMPTY
        outer_truncated, self.truncated = self.truncated, False
        self._busy.add(key)
        try:
            result = self._own_view(node, hops, nesting)
        finally:
            self._busy.discard(key)
        if not self.truncated:  # a view cut short by a limit is not the schema's view
            self._views[key] = result
        self.truncated = self.truncated or outer_truncated
        return result

    def _own_view(self, node: dict[str, Any], hops: int, nesting: int) -> _View:
        declared = node.get("type")
        names = [declared] if isinstance(declared, str) else declared
        types = frozenset(
            t for t in (names if isinstance(names, list) else []) if isinstance(t, str)
        ) - {"null"}
        properties = node.get("properties")
        required = node.get("required")
        items = node.get("items")
        if isinstance(items, list):  # Swagger 2.0 / draft-4 tuple form
            items = items[0] if items else None
        result = _View(
            types=types,
            properties=dict(properties) if isinstance(properties, dict) else {},
            required=frozenset(r for r in required if isinstance(r, str))
            if isinstance(required, list)
            else frozenset(),
            items=items if isinstance(items, dict | bool) else None,
        )
        all_of = node.get("allOf")
        if isinstance(all_of, list):
            for sub in all_of[:50]:
                result = result.merged(self.view(sub, hops, nesting + 1))
        for keyword in ("oneOf", "anyOf"):
            variants = node.get(keyword)
            if isinstance(variants, list) and variants:
                views = [self.view(v, hops, nesting + 1) for v in variants[:50]]
                result = result.merged(self._first_variant(views))
        return result

    @staticmethod
    def _first_variant(views: list[_View]) -> _View:
        """The first object variant, else the first array, else the first known one."""
        for test in (
            lambda v: v.is_object,
            lambda v: v.is_array,
            lambda v: not v.is_empty,
        ):
            for view in views:
                if test(view):
                    return view
        return _EMPTY

    def find(
        self, view: _View, rank: Callable[[tuple[str, ...], _View], int | None], max_depth: int
    ) -> str | None:
        """The dotted path of the best-ranked property (lowest rank, then shallowest)."""
        best: tuple[int, int, int, str] | None = None
        queue: list[tuple[tuple[str, ...], _View]] = [((), view)]
        order = 0
        for path, current in queue:
            if len(queue) > 2_000:
                break
            for name, raw in current.properties.items():
                if not isinstance(name, str):
                    continue
                sub = self.view(raw)
                here = (*path, name)
                order += 1
                score = rank(here, sub)
                if score is not None:
                    candidate = (score, len(here), order, ".".join(here))
                    best = candidate if best is None else min(best, candidate)
                if sub.is_object and len(here) < max_depth:
                    queue.append((here, sub))
        return best[3] if best else None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# -------------------------------------------------------------------------- operations


@dataclass
class _Op:
    method: str
    path: str  # as a client calls it: the server's or basePath's path part included
    index: int
    params: list[dict[str, Any]]
    bodies: list[tuple[str, Any]]  # (json | form | other, raw schema), in document order
    has_body: bool
    secured: bool
    schemes: tuple[str, ...]
    response: Any  # the raw schema of the first 2xx response, or None

    @property
    def templated(self) -> bool:
        return "{" in self.path

    def query(self, names: tuple[str, ...]) -> str | None:
        """The first query parameter whose normalized name is in `names` (in that order)."""
        found = {_norm(p["name"]): p["name"] for p in self.params if p.get("in") == "query"}
        for want in names:
            if want in found:
                return found[want]
        return None


def _media_kind(media: str) -> str:
    base = media.split(";", 1)[0].strip().lower()
    if base in ("application/json", "text/json") or base.endswith("+json"):
        return "json"
    if base in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return "form"
    return "other"


class _Api:
    """The document's operations and security schemes, with a resolver."""

    def __init__(self, doc: Document) -> None:
        self.raw = doc.raw if isinstance(doc.raw, dict) else {}
        self.swagger2 = doc.version == "2.0"
        self.r = _Resolver(self.raw)
        self.base = self._base_path()
        self.schemes = self._schemes()
        self.ops = self._operations()

    # base path --------------------------------------------------------------------

    def _base_path(self) -> str:
        if self.swagger2:
            base_path = self.raw.get("basePath")
            return _clean_base(base_path) if isinstance(base_path, str) else ""
        servers = self.raw.get("servers")
        urls = [
            url
            for server in (servers if isinstance(servers, list) else [])
            if isinstance(server, dict) and (url := _server_url(server)) is not None
        ]
        if not urls:
            return ""
        for url in urls:  # a relative server URL is on whatever host readyctl targets
            parts = urlsplit(url)
            if not parts.scheme and not parts.netloc:
                return _clean_base(parts.path)
        paths = {_clean_base(urlsplit(url).path) for url in urls}
        if len(paths) == 1:
            return paths.pop()
        return _clean_base(urlsplit(urls[0]).path)

    # security schemes ---------------------------------------------------------------

    def _schemes(self) -> dict[str, dict[str, Any]]:
        if self.swagger2:
            found = self.raw.get("securityDefinitions")
        else:
            components = self.raw.get("components")
            found = components.get("securitySchemes") if isinstance(components, dict) else None
        schemes: dict[str, dict[str, Any]] = {}
        for name, scheme in (found if isinstance(found, dict) else {}).items():
            resolved = self.r.deref(scheme)
            if isinstance(name, str) and isinstance(resolved, dict):
                schemes[name] = resolved
        return schemes

    # operations ---------------------------------------------------------------------

    def _operations(self) -> list[_Op]:
        paths = self.raw.get("paths")
        ops: list[_Op] = []
        if not isinstance(paths, dict):
            return ops
        for raw_path, item in paths.items():
            if not (isinstance(raw_path, str) and raw_path.startswith("/")):
                continue
            item = self.r.deref(item)
            if not isinstance(item, dict):
                continue
            shared = self._params(item.get("parameters"))
            for method in _METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    ops.append(self._operation(method, raw_path, op, shared, len(ops)))
        return ops

    def _params(self, raw: Any) -> dict[tuple[str, str], dict[str, Any]]:
        params: dict[tuple[str, str], dict[str, Any]] = {}
        for param in raw if isinstance(raw, list) else []:
            param = self.r.deref(param)
            if (
                isinstance(param, dict)
                and isinstance(param.get("name"), str)
                and isinstance(param.get("in"), str)
            ):
                params[(param["name"], param["in"])] = param
        return params

    def _operation(
        self,
        method: str,
        raw_path: str,
        op: dict[str, Any],
        shared: dict[tuple[str, str], dict[str, Any]],
        index: int,
    ) -> _Op:
        params = {**shared, **self._params(op.get("parameters"))}
        bodies, has_body = self._bodies(op, list(params.values()))
        security = op["security"] if "security" in op else self.raw.get("security")
        requirements = (
            [r for r in security if isinstance(r, dict)] if isinstance(security, list) else []
        )
        secured = bool(requirements) and all(requirements)  # {} = anonymous allowed
        if any(
            p.get("in") == "header" and p["name"].lower() == "authorization"
            for p in params.values()
        ):
            secured = True
        schemes = tuple(name for r in requirements for name in r if isinstance(name, str))
        return _Op(
            method=method.upper(),
            path=self.base + raw_path,
            index=index,
            params=list(params.values()),
            bodies=bodies,
            has_body=has_body,
            secured=secured,
            schemes=schemes,
            response=self._response(op),
        )

    def _bodies(
        self, op: dict[str, Any], params: list[dict[str, Any]]
    ) -> tuple[list[tuple[str, Any]], bool]:
        if self.swagger2:
            consumes = op.get("consumes", self.raw.get("consumes"))
            kinds = (
                [_media_kind(c) for c in consumes if isinstance(c, str)]
                if isinstance(consumes, list)
                else []
            )
            bodies: list[tuple[str, Any]] = []
            for param in params:
                if param.get("in") == "body":
                    if not kinds or "json" in kinds:
                        kind = "json"
                    else:
                        kind = "form" if "form" in kinds else "other"
                    bodies.append((kind, param.get("schema")))
            form = [p for p in params if p.get("in") == "formData"]
            if form:
                schema = {
                    "type": "object",
                    "properties": {p["name"]: {"type": p.get("type")} for p in form},
                    "required": [p["name"] for p in form if p.get("required") is True],
                }
                bodies.append(("form", schema))
            return bodies, bool(bodies)
        body = op.get("requestBody")
        if body is None:
            return [], False
        body = self.r.deref(body)
        content = body.get("content") if isinstance(body, dict) else None
        bodies = [
            (_media_kind(media), media_type.get("schema"))
            for media, media_type in (content.items() if isinstance(content, dict) else [])
            if isinstance(media, str) and isinstance(media_type, dict)
        ]
        return bodies, True

    def _response(self, op: dict[str, Any]) -> Any:
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return None
        codes = sorted(
            code
            for code in responses
            if isinstance(code, str) and re.fullmatch(r"2(\d\d|XX)", code, re.I)
        )
        for code in codes:
            response = self.r.deref(responses[code])
            if not isinstance(response, dict):
                continue
            if self.swagger2:
                schema = response.get("schema")
            else:
                content = response.get("content")
                if not isinstance(content, dict) or not content:
                    continue
                medias = [m for m in content if isinstance(m, str)]
                chosen = next((m for m in medias if _media_kind(m) == "json"), None)
                chosen = chosen or next((m for m in medias if m.startswith("*/*")), None)
                chosen = chosen or (medias[0] if medias else None)
                media_type = content.get(chosen) if chosen else None
                schema = media_type.get("schema") if isinstance(media_type, dict) else None
            if schema is not None:
                return schema
        return None

    # helpers --------------------------------------------------------------------

    def find_op(self, method: str, path: str) -> _Op | None:
        """The operation at `path` (trailing slash ignored) with `method`."""
        want = path.rstrip("/") or "/"
        for op in self.ops:
            if op.method == method and (op.path.rstrip("/") or "/") == want:
                return op
        return None

    def body_props(self, op: _Op) -> list[tuple[str, _View]]:
        """(kind, view) of each JSON or form request body, JSON first."""
        found = [(kind, self.r.view(schema)) for kind, schema in op.bodies if kind != "other"]
        return sorted(found, key=lambda kv: kv[0] != "json")

    def credentials(self, op: _Op) -> tuple[str, str | None, str] | None:
        """(body kind, username field, password field) of a body with a password property."""
        for kind, view in self.body_props(op):
            names = {_norm(n): n for n in view.properties if isinstance(n, str)}
            password = next((names[p] for p in _PASSWORD_NAMES if p in names), None)
            if password is None:
                continue
            username = next((names[u] for u in _USERNAME_NAMES if u in names), None)
            if username is None:
                username = next(
                    (
                        n
                        for n, raw in view.properties.items()
                        if n != password
                        and n in view.required
                        and self.r.view(raw).types in (frozenset(), frozenset({"string"}))
                    ),
                    None,
                )
            return kind, username, password
        return None

    def tokens(self, op: _Op | None) -> dict[str, str]:
        """The access_token / refresh_token dotted paths in the 2xx response of `op`."""
        if op is None or op.response is None:
            return {}
        view = self.r.view(op.response)
        found: dict[str, str] = {}
        access = self.r.find(view, _access_rank, 4)
        refresh = self.r.find(view, _refresh_rank, 4)
        if access:
            found["access_token"] = access
        if refresh:
            found["refresh_token"] = refresh
        return found


def _server_url(server: dict[str, Any]) -> str | None:
    url = server.get("url")
    if not isinstance(url, str):
        return None
    variables = server.get("variables")
    variables = variables if isinstance(variables, dict) else {}

    def substitute(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1))
        default = variable.get("default") if isinstance(variable, dict) else None
        return str(default) if isinstance(default, str | int | float) else match.group(0)

    url = re.sub(r"\{([^{}]*)\}", substitute, url)
    return None if "{" in url else url


def _clean_base(path: str) -> str:
    path = path.strip().removeprefix(".").rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return path


def _leaf(view: _View) -> bool:
    return not view.is_container


def _access_rank(path: tuple[str, ...], view: _View) -> int | None:
    names = [_norm(p) for p in path]
    if not _leaf(view) or any("refresh" in n for n in names):
        return None
    if names[-1] == "token" and len(names) > 1 and names[-2] in ("access", "accesstoken"):
        return 0
    return _ACCESS_NAMES.get(names[-1])


def _refresh_rank(path: tuple[str, ...], view: _View) -> int | None:
    names = [_norm(p) for p in path]
    if not _leaf(view):
        return None
    if names[-1] == "token" and len(names) > 1 and names[-2] in ("refresh", "refreshtoken"):
        return 0
    return _REFRESH_NAMES.get(names[-1])


# ---------------------------------------------------------------------------- the map


def derive_map(doc: Document) -> dict[str, Any]:
    """The API map readyctl derives from `doc`: only keys with evidence in the document."""
    api = _Api(doc)
    result: dict[str, Any] = {}
    prefix = _prefix(api)
    if prefix:
        result["prefix"] = prefix
    login, login_op = _login(api)
    if login:
        result["login"] = login
    me = _me(api)
    if me:
        result["me"] = me.path
    refresh = _refresh(api)
    if refresh:
        result["refresh"] = refresh
    logout = _logout(api)
    if logout:
        result["logout"] = {"method": logout.method, "path": logout.path}
    register, register_op = _register(api)
    if register:
        result["register"] = register
    health = _health(api)
    metrics = _metrics(api)
    privacy = _privacy(api)
    skip = {op.path for op in (me, login_op, register_op, metrics) if op is not None}
    if "privacy_export" in privacy:  # one document of the caller's data, not a list to page
        skip.add(privacy["privacy_export"]["path"])
    lists = _lists(api, skip)
    if lists:
        result["lists"] = lists
    json_endpoint = _json_endpoint(api, login, login_op, register_op)
    if json_endpoint:
        result["json_endpoint"] = json_endpoint
    if health:
        result["health"] = health
    if metrics:
        result["metrics"] = metrics.path
    security = _security(api, me)
    if security:
        result["security"] = security
    result.update(privacy)
    return result


def _privacy(api: _Api) -> dict[str, Any]:
    """The caller's own data export and account deletion (secured, no path parameters), the
    email-verification route, and the terms of service (`info.termsOfService`)."""
    out: dict[str, Any] = {}
    exports = [
        (("/me" not in op.path.lower()), op.method != "GET", len(op.path), op.index, op)
        for op in api.ops
        if op.method in ("GET", "POST")
        and op.secured
        and not op.templated
        and _EXPORT_WORDS.search(op.path.lower())
    ]
    if exports:
        op = min(exports, key=lambda c: c[:4])[-1]
        out["privacy_export"] = {"method": op.method, "path": op.path}
    deletes = [
        (rank, len(op.path), op.index, op)
        for op in api.ops
        if op.method == "DELETE" and op.secured and not op.templated
        for rank, suffix in enumerate(_ACCOUNT_SUFFIXES)
        if op.path.lower().rstrip("/").endswith(suffix)
    ]
    if deletes:
        op = min(deletes, key=lambda c: c[:3])[-1]
        out["account_delete"] = {"method": "DELETE", "path": op.path}
    verifies = [
        (len(op.path), op.index, op)
        for op in api.ops
        if op.method == "POST"
        and not op.templated
        and "email" in op.path.lower()
        and _VERIFY_EMAIL.search(op.path.lower())
        and "resend" not in op.path.lower()
    ]
    if verifies:
        op = min(verifies, key=lambda c: c[:2])[-1]
        out["verify_email"] = {"method": "POST", "path": op.path}
    info = api.raw.get("info")
    terms = info.get("termsOfService") if isinstance(info, dict) else None
    if isinstance(terms, str) and (
        terms.startswith("/") or terms.startswith(("http://", "https://"))
    ):
        out["terms"] = terms.strip()
    return out


def _prefix(api: _Api) -> str | None:
    """The leading segments up to a /v<N> segment shared by most operations."""
    counts: Counter[str] = Counter()
    for op in api.ops:
        segments = op.path.split("/")[1:]
        for i, segment in enumerate(segments[:4]):
            if _VERSION_SEGMENT.fullmatch(segment):
                counts["/" + "/".join(segments[: i + 1])] += 1
                break
    if not counts:
        return None
    prefix, n = counts.most_common(1)[0]
    return prefix if n * 2 > len(api.ops) else None


def _login(api: _Api) -> tuple[dict[str, Any] | None, _Op | None]:
    for scheme in api.schemes.values():
        token_url = _password_token_url(scheme, api.swagger2)
        if token_url is None:
            continue
        found = _token_endpoint(api, token_url)
        if found is None:
            continue
        path, op = found
        # without a documented body, the form fields RFC 6749 (4.3.2) names
        kind, username, password = "form", "username", "password"
        credentials = api.credentials(op) if op else None
        if credentials:
            kind, username, password = credentials
        login: dict[str, Any] = {"method": "POST", "path": path, "body": kind}
        if username:
            login["username_field"] = username
        login["password_field"] = password
        tokens = api.tokens(op)
        login["access_token"] = tokens.get("access_token", "access_token")  # RFC 6749 5.1
        if "refresh_token" in tokens:
            login["refresh_token"] = tokens["refresh_token"]
        return login, op

    best: tuple[int, int, _Op, tuple[str, str | None, str]] | None = None
    for op in api.ops:
        lowered = op.path.lower()
        if (
            op.method != "POST"
            or _NOT_LOGIN.search(lowered)
            or lowered.rstrip("/").endswith("/users")
        ):
            continue
        credentials = api.credentials(op)
        if credentials is None:
            continue
        score = 3 * bool(_LOGIN_WORDS.search(lowered)) + ("auth" in lowered) - 2 * op.templated
        if best is None or score > best[0]:
            best = (score, op.index, op, credentials)
    if best is None:
        return None, None
    _, _, op, (kind, username, password) = best
    login = {"method": op.method, "path": op.path, "body": kind}
    if username:
        login["username_field"] = username
    login["password_field"] = password
    login.update(api.tokens(op))
    return login, op


def _password_token_url(scheme: dict[str, Any], swagger2: bool) -> str | None:
    if str(scheme.get("type", "")).lower() != "oauth2":
        return None
    if swagger2:
        url = scheme.get("tokenUrl") if scheme.get("flow") == "password" else None
    else:
        flows = scheme.get("flows")
        password = flows.get("password") if isinstance(flows, dict) else None
        url = password.get("tokenUrl") if isinstance(password, dict) else None
    return url.strip() if isinstance(url, str) and url.strip() else None


def _token_endpoint(api: _Api, token_url: str) -> tuple[str, _Op | None] | None:
    """(path, operation if documented) of a password-flow tokenUrl on the target."""
    parts = urlsplit(token_url)
    path = parts.path
    if parts.scheme or parts.netloc:
        # another host (an identity provider) is out of reach, unless the API documents it
        candidates = [path, api.base + path]
        documented = [c for c in candidates if api.find_op("POST", c)]
        return (documented[0], api.find_op("POST", documented[0])) if documented else None
    if path.startswith("/"):
        candidates = [path, api.base + path]
    else:
        candidates = [api.base + "/" + path.removeprefix("./")]
    for candidate in candidates:
        op = api.find_op("POST", candidate)
        if op:
            return op.path, op
    return candidates[0], None


def _me(api: _Api) -> _Op | None:
    best: tuple[int, int, int] | None = None
    chosen = None
    for op in api.ops:
        if op.method != "GET" or op.templated or not op.secured:
            continue
        lowered = op.path.lower().rstrip("/")
        for rank, suffix in enumerate(_ME_SUFFIXES):
            if lowered.endswith(suffix):
                key = (rank, len(op.path), op.index)
                if best is None or key < best:
                    best, chosen = key, op
                break
    return chosen


def _refresh(api: _Api) -> dict[str, Any] | None:
    candidates = [op for op in api.ops if op.method == "POST" and "refresh" in op.path.lower()]
    if not candidates:
        return None

    def score(op: _Op) -> tuple[int, int]:
        lowered = op.path.lower()
        return (-(("token" in lowered) + ("auth" in lowered)) + 5 * op.templated, op.index)

    op = min(candidates, key=score)
    refresh: dict[str, Any] = {"method": "POST", "path": op.path}
    for kind, view in api.body_props(op):
        names = {_norm(n): n for n in view.properties if isinstance(n, str)}
        name = next((names[f] for f in _REFRESH_FIELDS if f in names), None)
        if name:
            refresh.update(send=kind, field=name)
            break
    else:
        cookies = [p["name"] for p in op.params if p.get("in") == "cookie"]
        if cookies:
            named = [c for c in cookies if "refresh" in c.lower()]
            refresh.update(send="cookie", field=(named or cookies)[0])
        elif not op.has_body:
            refresh["send"] = "header"
    refresh.update(api.tokens(op))
    return refresh


def _logout(api: _Api) -> _Op | None:
    preference = {"POST": 0, "DELETE": 1, "GET": 2}
    candidates = [
        op for op in api.ops if op.method in preference and _LOGOUT_WORDS.search(op.path.lower())
    ]
    if not candidates:
        return None
    return min(
        candidates, key=lambda op: (preference[op.method], op.templated, len(op.path), op.index)
    )


def _register(api: _Api) -> tuple[dict[str, Any] | None, _Op | None]:
    candidates: list[tuple[tuple[bool, bool, bool, int, int], _Op, Any]] = []
    for op in api.ops:
        if op.method != "POST":
            continue
        lowered = op.path.lower()
        credentials = api.credentials(op)
        named = bool(_REGISTER_WORDS.search(lowered))
        if named:
            followup = bool(_REGISTER_FOLLOWUPS.search(lowered))
        elif lowered.rstrip("/").endswith("/users") and credentials and not op.templated:
            followup = False
        else:
            continue
        key = (credentials is None, not named, followup, len(op.path), op.index)
        candidates.append((key, op, credentials))
    if not candidates:
        return None, None
    _, op, credentials = min(candidates, key=lambda c: c[0])
    register: dict[str, Any] = {"method": op.method, "path": op.path}
    if credentials:
        _, username, password = credentials
        if username:
            register["username_field"] = username
        register["password_field"] = password
    return register, op


def _lists(api: _Api, skip: set[str]) -> list[dict[str, Any]]:
    found: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for op in api.ops:
        if op.method != "GET" or op.templated or op.path in skip or _probe_rank(op.path):
            continue
        page = op.query(_PAGE_PARAMS)
        size = op.query(_SIZE_PARAMS)
        offset = op.query(_OFFSET_PARAMS)
        items: str | None = None
        total: str | None = None
        if op.response is not None:
            view = api.r.view(op.response)
            if view.is_array:
                items = ""
            elif view.is_object:
                items = _array_path(api.r, view, 2)
                if items is not None or page or size or offset:
                    total = api.r.find(view, _total_rank, 2)
        if items is None and not (page or size or offset):
            continue
        entry = {
            "path": op.path,
            "page_param": page,
            "size_param": size,
            "offset_param": offset,
            "items": items,
            "total": total,
        }
        score = 2 * bool(page or offset) + bool(size) + bool(total) + bool(items)
        found.append(((-score, not op.secured, op.index), entry))
    found.sort(key=lambda f: f[0])
    return [entry for _, entry in found[:10]]


def _array_path(r: _Resolver, view: _View, depth: int) -> str | None:
    """The dotted path of the list inside an object response, or None."""
    arrays: dict[str, str] = {}
    objects: list[tuple[str, _View]] = []
    for name, raw in view.properties.items():
        if not isinstance(name, str):
            continue
        sub = r.view(raw)
        if sub.is_array:
            arrays[_norm(name)] = name
        elif sub.is_object:
            objects.append((name, sub))
    for want in _ITEM_NAMES:
        if want in arrays:
            return arrays[want]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if arrays or depth <= 1:
        return None
    for name, sub in objects:
        inner = _array_path(r, sub, depth - 1)
        if inner is not None:
            return f"{name}.{inner}"
    return None


def _total_rank(path: tuple[str, ...], view: _View) -> int | None:
    name = _norm(path[-1])
    if name not in _TOTAL_NAMES or not view.types <= {"integer", "number"}:
        return None
    return _TOTAL_NAMES.index(name)


def _json_endpoint(
    api: _Api, login: dict[str, Any] | None, login_op: _Op | None, register_op: _Op | None
) -> dict[str, str] | None:
    if login and login_op and login.get("body") == "json":
        return {"method": login_op.method, "path": login_op.path}
    if register_op and any(kind == "json" for kind, _ in register_op.bodies):
        return {"method": register_op.method, "path": register_op.path}
    for op in api.ops:
        if (
            op.method in ("POST", "PUT", "PATCH")
            and not op.templated
            and any(kind == "json" for kind, _ in op.bodies)
        ):
            return {"method": op.method, "path": op.path}
    return None


def _probe_rank(path: str) -> tuple[str, int] | None:
    """("ready" | "live", rank) when `path` looks like a health probe (lower rank: surer)."""
    segments = path.lower().rstrip("/").split("/")
    last = segments[-1]
    words = set(re.split(r"[-_.]", last))
    if words & _READY_WORDS:
        return "ready", 0
    if words & _LIVE_WORDS:
        return "live", 0
    if words & _HEALTH_WORDS or "health" in last:
        return "live", 1
    if last in ("ping", "status") and all(
        s in _PROBE_PARENTS or _VERSION_SEGMENT.fullmatch(s) for s in segments[:-1]
    ):
        return "live", 2
    return None


def _health(api: _Api) -> dict[str, str]:
    best: dict[str, tuple[int, int, int, str]] = {}
    for op in api.ops:
        probe = _probe_rank(op.path) if op.method == "GET" and not op.templated else None
        if probe is None:
            continue
        kind, rank = probe
        key = (rank, len(op.path), op.index, op.path)
        if kind not in best or key < best[kind]:
            best[kind] = key
    # a single /health stands for liveness only; readiness needs its own probe
    return {kind: best[kind][3] for kind in ("live", "ready") if kind in best}


def _metrics(api: _Api) -> _Op | None:
    candidates = [
        op
        for op in api.ops
        if op.method == "GET"
        and not op.templated
        and op.path.lower().rstrip("/").rsplit("/", 1)[-1] in ("metrics", "prometheus")
    ]
    return min(candidates, key=lambda op: (len(op.path), op.index)) if candidates else None


def _security(api: _Api, me: _Op | None) -> dict[str, str] | None:
    order: list[str] = list(me.schemes) if me else []
    usage = Counter(name for op in api.ops for name in op.schemes)
    order += [name for name, _ in usage.most_common()]
    order += list(api.schemes)
    for name in order:
        scheme = api.schemes.get(name)
        header = _header_of(scheme) if scheme else None
        if header:
            return header
    return None


def _header_of(scheme: dict[str, Any]) -> dict[str, str] | None:
    kind = str(scheme.get("type", "")).lower()
    if kind == "http":
        http_scheme = str(scheme.get("scheme", "")).lower()
        if http_scheme == "bearer":
            return {"header": "Authorization", "scheme": "Bearer"}
        if http_scheme == "basic":
            return {"header": "Authorization", "scheme": "Basic"}
        return None
    if kind == "basic":  # Swagger 2.0
        return {"header": "Authorization", "scheme": "Basic"}
    if kind == "apikey":
        name = scheme.get("name")
        if scheme.get("in") != "header" or not isinstance(name, str) or not name:
            return None
        description = str(scheme.get("description", ""))
        bearer = name.lower() == "authorization" and "bearer" in description.lower()
        return {"header": name, "scheme": "Bearer" if bearer else ""}
    if kind in ("oauth2", "openidconnect"):
        return {"header": "Authorization", "scheme": "Bearer"}
    return None


__all__ = [
    "CANDIDATE_PATHS",
    "Document",
    "OpenApiError",
    "derive_map",
    "parse_document",
]
