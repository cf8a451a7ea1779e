"""A seeded fuzzer for readyctl.yaml: an invalid config is exit 2 with one line naming the file.

Never an internal error (exit 4), a traceback, a hang or memory without bound. Cases mutate
the repository's readyctl.yaml and examples/env-only.yaml structurally (wrong types, unknown
keys, deep nesting, YAML aliases and billion laughs, impossible dates, huge strings,
non-UTF-8 bytes, `extends` as a list, a mapping, a loop or a long chain, scalar
environments, NaN, infinite and negative weights, paths no system can hold, mixed key
types, typed check settings), plus the kinds an adversarial run found as named cases.

Every case runs in a batch inside a child process (RLIMIT_AS 1 GB, peak RSS under 300 MB,
SIGALRM per case) through `execute_report(plan=True)`, the function `readyctl check --plan`
calls (it loads the config, validates check settings against `load_catalog()`, the selection
and the waivers), where only a ReadyctlError (exit 2) may escape. About twenty (most named
cases, a sample of the generated ones) also run as `python -m readyctl check --plan --config
FILE` in a subprocess: exit 0 or 2, one stderr line naming the file, peak RSS from wait4.

    READYCTL_FUZZ_CASES=10000   how many generated cases (default 300)
    READYCTL_FUZZ_SEED=N        replay a run (every failure message prints its seed)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("READYCTL_FUZZ_SEED", "20261111"))
CASES = int(os.environ.get("READYCTL_FUZZ_CASES", "300"))
CHUNK = 75 if CASES <= 1000 else 250
CLI_SAMPLE = 4  # generated cases that also run through the real CLI
MEMORY_LIMIT = 1024 * 2**20  # RLIMIT_AS of every child: a blow-up is a MemoryError, not a hang
MAX_RSS = 300 * 2**20  # peak resident memory any child may reach
CASE_TIMEOUT_S = 20  # one case, in the batch worker (SIGALRM)
CLI_TIMEOUT_S = 60  # one CLI run: far above the ~1 s a config error takes

pytestmark = pytest.mark.slow


# -- the cases ----------------------------------------------------------------------------


@dataclass
class Case:
    """One config to try: the main file, files beside it, and what produced it."""

    name: str
    text: bytes
    companions: dict[str, bytes] = field(default_factory=dict)
    expect: int | None = None  # an exact exit code, for the named cases

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in {**ENV_FILES, **self.companions}.items():
            (directory / name).write_bytes(data)
        path = directory / "readyctl.yaml"
        path.write_bytes(self.text)
        return path


GOOD_ENV = (
    b"NODE_ENV=production\n"
    b"DATABASE_URL=postgresql://app:Qx7rT2mVb9kLp4wZ@db.internal:5432/counsel\n"
    b"JWT_SECRET=9fK2vQ7xLm4ZpR8tW1yB6nC3hJ5sD0gE-aU_kX\n"
    b"FROM_EMAIL=care@counsel.example.org\nWEB_APP_URL=https://counsel.example.org\n"
)
ENV_FILES = {".env.staging": GOOD_ENV, ".env.production": GOOD_ENV}
# interpolation reads these: a 100 KB variable used many times must not grow without bound
FUZZ_ENVIRON = {"FUZZ_BIG": "x" * 100_000, "FUZZ_SMALL": "small"}

MAIN = (ROOT / "readyctl.yaml").read_text(encoding="utf-8")
ENV_ONLY = (ROOT / "examples" / "env-only.yaml").read_text(encoding="utf-8")
BASES = {
    "readyctl.yaml": MAIN,
    "env-only.yaml": ENV_ONLY,  # two environments, no default: exit 2 until one is picked
    "env-only.yaml+default": "default_environment: staging\n" + ENV_ONLY,
}
CHECK_IDS = sorted(
    f"{p.parent.name}.{p.stem}"
    for p in (ROOT / "checks").glob("*/*.py")
    if not p.name.startswith("_")
)
SEVERITIES = ["critical", "high", "medium", "low", "info"]


def _bomb(levels: int, width: int = 9, leaf: str = "lol") -> str:
    """A billion-laughs flow list: level k repeats level k-1 `width` times."""
    parts = [f"&l0 [{', '.join([leaf] * width)}]"]
    for k in range(1, levels):
        parts.append(f"&l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "[" + ", ".join(parts) + "]"


def _alias_chain(n: int) -> str:
    """Flat text, deep once aliases are followed: a_k = [a_(k-1)]."""
    parts = ["&a0 [x]"] + [f"&a{k} [*a{k - 1}]" for k in range(1, n)]
    return "[" + ", ".join(parts) + "]"


def _chain(n: int) -> str:
    """`environments:` where e0 extends e1 extends ... e(n)."""
    body = "".join(f"  e{i}:\n    extends: e{i + 1}\n" for i in range(n))
    return f"default_environment: e0\nenvironments:\n{body}  e{n}: {{}}\n"


def named_cases() -> dict[str, Case]:
    """The kinds that used to crash or hang (issue 11), and the valid bases."""
    laughs = "\n".join(
        [f'a: &a ["{"lol" * 3}", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [
            f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join([f'*{chr(97 + k)}'] * 9)}]"
            for k in range(8)
        ]
    )
    cases = {
        "valid readyctl.yaml": Case("valid", MAIN.encode(), expect=0),
        "valid env-only.yaml": Case("valid", BASES["env-only.yaml+default"].encode(), expect=0),
        "env-only.yaml: several environments": Case("several", ENV_ONLY.encode(), expect=2),
        "non-UTF-8 bytes": Case("utf8", b"version: 2\nbase:\n  description: caf\xe9\n"),
        "UTF-16 file": Case("utf16", "version: 2\n".encode("utf-16")),
        "recursive alias": Case("alias", b"base: &x {a: *x}\n"),
        "900-deep nesting": Case("deep", ("base: " + "[" * 900 + "]" * 900 + "\n").encode()),
        "deep once aliases are followed": Case("chain", f"base: {_alias_chain(200)}\n".encode()),
        "1000-long extends chain": Case("extends", _chain(1000).encode()),
        "extends as a list": Case(
            "extends", b"environments:\n  a: {}\n  b:\n    extends: [a]\n", expect=2
        ),
        "extends as a mapping": Case(
            "extends", b"environments:\n  a: {}\n  b:\n    extends: {a: 1}\n", expect=2
        ),
        "impossible date": Case(
            "date",
            b"waivers:\n  - {check: env.required, reason: accepted, owner: me, "
            b"expires: 2026-02-30}\n",
        ),
        "!!timestamp on a non-date": Case("timestamp", b"default_environment: !!timestamp hi\n"),
        "scalar environment extended": Case(
            "scalar", b"environments:\n  a: 5\n  b:\n    extends: a\n"
        ),
        "path over 255 bytes": Case(
            "path", f"environments:\n  a:\n    env_file: {'p' * 300}\n".encode()
        ),
        "waivers_file over 255 bytes": Case("path", f"waivers_file: {'w' * 300}\n".encode()),
        "mixed key types": Case(
            "keys", b"environments:\n  1: {}\n  a: {extends: zz}\n  true: {}\n", expect=2
        ),
        "infinite weight": Case("weight", b"scoring:\n  weights: {critical: .inf}\n"),
        "NaN check weight": Case("weight", b"scoring:\n  check_weights: {'env.*': .nan}\n"),
        "negative weight": Case("weight", b"scoring:\n  weights: {high: -5}\n"),
        "billion laughs": Case("laughs", (laughs + "\n").encode()),
        # 729 values for YAML, 73 MB once each `${FUZZ_BIG}` (100 KB) is filled in
        "billion laughs through interpolation": Case(
            "laughs", ("base:\n  description: " + _bomb(3, 9, '"${FUZZ_BIG}"') + "\n").encode()
        ),
        "interpolation without bound": Case(
            "interpolation", ('base:\n  description: "' + "${FUZZ_BIG}" * 2000 + '"\n').encode()
        ),
        "int of 5000 digits": Case("int", ("version: " + "9" * 5000 + "\n").encode()),
        # was "--format: unknown format" (a flag the user never passed), naming no file
        "unknown report format": Case("format", b"report:\n  formats: [terminal, son]\n"),
    }
    for name, case in cases.items():
        if case.expect is None:
            case.expect = 2
        case.name = name
    return cases


RAW = "__RAW{}__"


class _Mutator:
    """Structural mutations of a parsed config, then of its text and bytes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.raw: list[str] = []  # YAML text substituted for RAW tokens after dumping
        self.companions: dict[str, bytes] = {}
        self.ops: list[str] = []

    def token(self, text: str) -> str:
        self.raw.append(text)
        return RAW.format(len(self.raw) - 1)

    # where to put things
    def containers(self, data: Any) -> list[tuple[Any, Any]]:
        """Every (container, key or index) slot in the tree, in document order."""
        out: list[tuple[Any, Any]] = []
        stack = [data]
        while stack:
            node = stack.pop()
            items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            for k, v in items:
                out.append((node, k))
                if isinstance(v, dict | list) and len(out) < 2000:
                    stack.append(v)
        return out

    def slot(self, data: dict[str, Any]) -> tuple[Any, Any]:
        slots = self.containers(data)
        return self.rng.choice(slots) if slots else (data, "extra")

    def env_names(self, data: dict[str, Any]) -> list[Any]:
        envs = data.setdefault("environments", {})
        if not isinstance(envs, dict) or not envs:
            data["environments"] = envs = {"demo": {}}
        return list(envs)

    # values
    def scalar(self) -> Any:
        rng = self.rng
        return rng.choice(
            [
                0,
                -1,
                1,
                2**63,
                1.5,
                float("nan"),
                float("inf"),
                float("-inf"),
                -0.0,
                True,
                None,
                "",
                "x",
                "https://api.example.org",
                "${FUZZ_SMALL}",
                "${FUZZ_UNSET}",
                "${FUZZ_UNSET:-fallback}",
                "${FUZZ_BIG}",
                "a\nb",
                "\u2028line",
                "~/file",
                "../" * 50,
                [],
                {},
                [1, "two", None],
                {"k": "v"},
            ]
        )

    def raw_value(self) -> str:
        rng = self.rng
        kind = rng.choice(
            [
                "deep_list",
                "deep_map",
                "bomb",
                "recursive",
                "alias_chain",
                "date",
                "huge_string",
                "huge_int",
                "interp_bomb",
                "tagged",
                "merge",
            ]
        )
        self.ops.append(kind)
        if kind == "deep_list":
            d = rng.choice([10, 63, 64, 65, 100, 900, 20_000])
            return "[" * d + "]" * d
        if kind == "deep_map":
            d = rng.choice([10, 62, 64, 65, 200, 5000])
            return "{a: " * d + "1" + "}" * d
        if kind == "bomb":
            return _bomb(rng.randint(2, 12), rng.randint(2, 12))
        if kind == "recursive":
            return rng.choice(["&r [*r]", "&r {a: *r}", "&r {<<: *r}", "&r [1, [2, *r]]"])
        if kind == "alias_chain":
            return _alias_chain(rng.choice([5, 60, 70, 500]))
        if kind == "date":
            return rng.choice(
                [
                    "2026-02-30",
                    "2026-13-01",
                    "0000-00-00",
                    "2026-02-29 25:61:61",
                    "!!timestamp hello",
                    "!!timestamp 2026-02-30",
                    "2026-06-30",
                    "2026-06-30T10:00:00Z",
                ]
            )
        if kind == "huge_string":
            return "x" * rng.choice([300, 5000, 100_000, 1_000_000, 5_000_000])
        if kind == "huge_int":
            return rng.choice(["9" * 5000, "1.0e999", "-1.0e999", "0x" + "f" * 5000])
        if kind == "interp_bomb":
            return '"' + "${FUZZ_BIG}" * rng.choice([10, 100, 2000]) + '"'
        if kind == "tagged":
            return rng.choice(
                [
                    "!!int abc",
                    "!!float abc",
                    "!!bool maybe",
                    "!!binary ***",
                    "!!set {a, b}",
                    "!!omap [a, b]",
                    "!!python/object:os.system ls",
                    "!!str 12",
                    "!!null x",
                    "!custom value",
                ]
            )
        return rng.choice(["{<<: [*m, *m]}", "[&m {a: 1}, {<<: *m, b: 2}]", "{<<: 5}"])

    # the mutations
    def mutate(self, data: dict[str, Any]) -> None:
        rng = self.rng
        op = rng.choice(
            [
                "wrong_type",
                "wrong_type",
                "unknown_key",
                "delete_key",
                "raw",
                "raw",
                "extends",
                "scalar_env",
                "weights",
                "floats",
                "long_path",
                "mixed_keys",
                "waivers",
                "waivers_file",
                "checks",
                "checks",
                "not_applicable",
                "environments",
            ]
        )
        self.ops.append(op)
        getattr(self, f"op_{op}")(data)

    def op_wrong_type(self, data: dict[str, Any]) -> None:
        node, key = self.slot(data)
        node[key] = self.scalar()

    def op_unknown_key(self, data: dict[str, Any]) -> None:
        maps = [n[k] for n, k in self.containers(data) if isinstance(n[k], dict)] + [data]
        self.rng.choice(maps)[self.rng.choice(["bogus", "base_ulr", "envs", "weight"])] = 1

    def op_delete_key(self, data: dict[str, Any]) -> None:
        node, key = self.slot(data)
        if isinstance(node, dict):
            del node[key]
        else:
            node.pop(key)

    def op_raw(self, data: dict[str, Any]) -> None:
        node, key = self.slot(data)
        node[key] = self.token(self.raw_value())

    def op_extends(self, data: dict[str, Any]) -> None:
        rng = self.rng
        names = self.env_names(data)
        envs = data["environments"]
        name = rng.choice(names)
        if not isinstance(envs[name], dict):
            envs[name] = {}
        kind = rng.choice(["list", "map", "int", "null", "self", "loop", "unknown", "chain"])
        self.ops.append(f"extends:{kind}")
        target: Any = {
            "list": [names[0]],
            "map": {names[0]: 1},
            "int": 7,
            "null": None,
            "self": name,
            "unknown": "nowhere",
        }.get(kind)
        if kind == "loop":
            envs["loop_b"] = {"extends": name}
            target = "loop_b"
        if kind == "chain":
            n = rng.choice([5, 31, 32, 33, 300, 2000])
            for i in range(n):
                envs[f"c{i}"] = {"extends": f"c{i + 1}"}
            envs[f"c{n}"] = {}
            target = "c0"
        envs[name]["extends"] = target

    def op_scalar_env(self, data: dict[str, Any]) -> None:
        names = self.env_names(data)
        envs = data["environments"]
        envs["scalar"] = self.rng.choice([5, "text", [1, 2], True, 1.5, None])
        other = self.rng.choice(names)
        if isinstance(envs[other], dict):
            envs[other]["extends"] = "scalar"

    def op_weights(self, data: dict[str, Any]) -> None:
        rng = self.rng
        scoring = data.setdefault("scoring", {})
        if not isinstance(scoring, dict):
            data["scoring"] = scoring = {}
        value = rng.choice([float("nan"), float("inf"), float("-inf"), -1, -0.5, 1e308, "x", 3])
        if rng.random() < 0.5:
            weights = scoring.setdefault("weights", {})
            if isinstance(weights, dict):
                weights[rng.choice([*SEVERITIES, "blocker", 1])] = value
        else:
            scoring["check_weights"] = {rng.choice(["env.*", "*", "nope.*"]): value}

    def op_floats(self, data: dict[str, Any]) -> None:
        rng = self.rng
        section, key = rng.choice(
            [
                ("gate", "fail_under"),
                ("gate", "max_regression"),
                ("runner", "deadline_s"),
                ("runner", "jobs"),
                ("env", "secret_entropy_min"),
                ("report", "history_keep"),
                ("report", "trend_runs"),
            ]
        )
        block = data.setdefault(section, {})
        if isinstance(block, dict):
            block[key] = rng.choice([float("nan"), float("inf"), float("-inf"), -1, 1e308, 0])

    def op_long_path(self, data: dict[str, Any]) -> None:
        rng = self.rng
        path = rng.choice(
            [
                "p" * 256,
                "p" * 300,
                "/".join(["d" * 200] * 30),
                "x" * 5000,
                "a\0b",
                "~" + "u" * 300 + "/x",
                "~nobody\0/x",
                "/dev/null",
                ".",
                "",
            ]
        )
        where = rng.choice(["env_file", "ca_bundle", "waivers_file", "out", "example_file"])
        self.ops.append(f"path:{where}")
        if where == "waivers_file":
            data["waivers_file"] = path
        elif where == "out":
            data.setdefault("report", {})
            if isinstance(data["report"], dict):
                data["report"][rng.choice(["out", "history_dir"])] = path
        elif where == "example_file":
            if isinstance(data.get("env"), dict):
                data["env"]["example_file"] = path
        else:
            name = rng.choice(self.env_names(data))
            if isinstance(data["environments"][name], dict):
                data["environments"][name][where] = path

    def op_mixed_keys(self, data: dict[str, Any]) -> None:
        maps = [n[k] for n, k in self.containers(data) if isinstance(n[k], dict)] + [data]
        target = self.rng.choice(maps)
        target[self.rng.choice([1, True, None, 1.5, -3])] = self.rng.choice([{}, 1, "x"])

    def _waiver(self) -> Any:
        rng = self.rng
        waiver: dict[Any, Any] = {
            "check": rng.choice(["env.*", "env.required", "", "nope", 5]),
            "reason": rng.choice(["accepted for now", "", "ab"]),
            "owner": rng.choice(["me", ""]),
        }
        if rng.random() < 0.6:
            waiver["expires"] = self.token(
                rng.choice(["2099-01-01", "2026-02-30", "2001-01-01", "tomorrow", "!!timestamp x"])
            )
        if rng.random() < 0.2:
            waiver[rng.choice(["bogus", 1])] = 1
        return rng.choice([waiver, waiver, 5, None, [waiver]])

    def op_waivers(self, data: dict[str, Any]) -> None:
        data["waivers"] = [self._waiver() for _ in range(self.rng.randint(1, 3))]

    def op_waivers_file(self, data: dict[str, Any]) -> None:
        rng = self.rng
        data["waivers_file"] = "waivers.yaml"
        items = [self._waiver() for _ in range(rng.randint(1, 3))]
        body = _dump({"waivers": items} if rng.random() < 0.7 else items)
        for i, text in enumerate(self.raw):
            body = body.replace(RAW.format(i), text)
        blob = body.encode()
        choice = rng.random()
        if choice < 0.15:
            blob = blob[: rng.randint(0, len(blob))] + b"\xff\xfe" + blob
        elif choice < 0.3:
            blob = f"waivers: {_bomb(10)}\n".encode()
        self.companions["waivers.yaml"] = blob

    def op_checks(self, data: dict[str, Any]) -> None:
        rng = self.rng
        cid = rng.choice([*CHECK_IDS, "nope.check", "env.requierd", 1])
        settings = _settings_of(cid) if isinstance(cid, str) else {}
        if settings and rng.random() < 0.8:
            key = rng.choice(sorted(settings))
            settings[key] = rng.choice(
                [self.scalar(), self.token(self.raw_value()), float("nan"), -1]
            )
        elif rng.random() < 0.5:
            settings[rng.choice(["bogus", "timeout", 3])] = self.scalar()
        checks = data.setdefault("checks", {})
        if not isinstance(checks, dict):
            data["checks"] = checks = {}
        checks[cid] = rng.choice([settings, settings, settings, None, 5, [settings]])

    def op_not_applicable(self, data: dict[str, Any]) -> None:
        rng = self.rng
        data["not_applicable"] = [
            {
                "item": rng.choice(["19", 19, "critical_paths", "99", None, [1]]),
                "reason": "internal API behind the VPN",
                "owner": "platform",
                "expires": self.token(rng.choice(["2099-12-31", "2026-02-30", "never"])),
            }
        ]

    def op_environments(self, data: dict[str, Any]) -> None:
        rng = self.rng
        data["environments"] = rng.choice(
            [[], "demo", None, 5, {}, {"": {}}, {"a b": {"base_url": "ftp://x"}}]
        )
        if rng.random() < 0.5:
            data["default_environment"] = rng.choice(["demo", "", 5, None, "staging"])

    # text and bytes
    def text_mutations(self, blob: bytes) -> bytes:
        rng = self.rng
        if rng.random() > 0.25 or not blob:
            return blob
        op = rng.choice(
            ["bytes", "truncate", "flip", "tab", "dup_line", "utf16", "bom", "nul", "docs", "root"]
        )
        self.ops.append(f"text:{op}")
        at = rng.randint(0, len(blob))
        if op == "bytes":
            bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
            return blob[:at] + bad + blob[at:]
        if op == "truncate":
            return blob[:at]
        if op == "flip":
            i = min(at, len(blob) - 1)
            return blob[:i] + bytes([rng.randint(0, 255)]) + blob[i + 1 :]
        if op == "tab":
            return blob.replace(b"\n  ", b"\n\t", 1)
        if op == "dup_line":
            lines = blob.split(b"\n")
            i = rng.randrange(len(lines))
            return b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        if op == "utf16":
            return blob.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-32"]))
        if op == "bom":
            return b"\xef\xbb\xbf" + blob
        if op == "nul":
            return blob[:at] + b"\x00" + blob[at:]
        if op == "docs":
            return blob + b"\n---\nversion: 2\n"
        return rng.choice([b"- a\n- b\n", b"just text\n", b"", b"~\n", b"42\n", b"[]\n"])


def _settings_of(cid: str) -> dict[str, Any]:
    """The default settings of a check, as plain data (or {} when it has none)."""
    from readyctl.registry import load_catalog

    cls = load_catalog().checks.get(cid)
    if cls is None or cls.Settings is None:
        return {}
    try:
        return dict(cls.Settings().model_dump(mode="json"))
    except Exception:  # settings without defaults for every key
        return {}


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)


def generated_case(seed: int, index: int) -> Case:
    """Case `index` of run `seed`: the same bytes on every machine and every run."""
    rng = random.Random(f"{seed}:{index}")
    base = rng.choice(sorted(BASES))
    data = yaml.safe_load(BASES[base]) or {}
    m = _Mutator(rng)
    for _ in range(rng.choice([1, 1, 2, 3])):
        m.mutate(data)
    text = _dump(data)
    for i, raw in enumerate(m.raw):
        text = text.replace(RAW.format(i), raw)
    blob = m.text_mutations(text.encode("utf-8"))
    return Case(f"#{index} {base}: {', '.join(m.ops)}", blob, m.companions)


# -- running them -------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("READYCTL_")}
    env.update(FUZZ_ENVIRON)
    env.update({"COLUMNS": "160", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)})
    return env


@dataclass
class Finished:
    code: int
    out: str
    err: str
    max_rss: int  # bytes
    timed_out: bool


LAUNCHER = Path(__file__).resolve().parents[1] / "launch_small.py"


def run_limited(args: list[str], cwd: Path, timeout: float) -> Finished:
    """Run a child with RLIMIT_AS; its own peak RSS, a hang killed.

    The child is forked from a small launcher (tests/launch_small.py): a child forked from the
    pytest worker would report the worker's RSS as its own peak.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        result = Path(tmp) / "result.json"
        env = {
            **_child_env(),
            "LAUNCH_RLIMIT_AS": str(MEMORY_LIMIT),
            "LAUNCH_TIMEOUT_S": str(timeout),
            "LAUNCH_RESULT": str(result),
        }
        proc = subprocess.run(
            [sys.executable, str(LAUNCHER), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=timeout + 60,  # the launcher enforces `timeout`; this guards the launcher
            check=False,
        )
        got = json.loads(result.read_text()) if result.exists() else {}
        out.seek(0)
        err.seek(0)
        return Finished(
            int(got.get("code", proc.returncode)),
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            int(got.get("max_rss", 0)),
            bool(got.get("timed_out", False)),
        )


def message_problem(message: str, config: Path) -> str | None:
    """Why a config error message is not one line naming the file (None when it is)."""
    if len(message.splitlines()) != 1:
        return f"{len(message.splitlines())} lines instead of one"
    if "Traceback" in message or "internal error" in message:
        return "a traceback or internal error"
    folders = {str(config.parent), str(config.parent.resolve())}
    if not any(re.search(re.escape(f) + r"/[^:/]+:", message) for f in folders):
        return "does not name the config file (or a file it names) followed by ':'"
    return None


def _replay(seed: int, case: Case, where: Path) -> str:
    return (
        f"seed {seed}, case {case.name!r}; replay: READYCTL_FUZZ_SEED={seed} "
        f"READYCTL_FUZZ_CASES={CASES} pytest {Path(__file__).relative_to(ROOT)}; the file: "
        f"python -m readyctl check --plan --config {where}"
    )


def check_cli_case(case: Case, directory: Path, seed: int) -> None:
    """`python -m readyctl check --plan --config FILE`: 0 or 2, one line, bounded."""
    config = case.write(directory)
    cmd = [sys.executable, "-m", "readyctl", "check", "--plan", "--config", str(config)]
    started = time.monotonic()
    got = run_limited(cmd, directory, CLI_TIMEOUT_S)
    took = time.monotonic() - started
    why = _replay(seed, case, config)
    assert not got.timed_out, f"hung for {took:.0f} s ({why})"
    assert "Traceback" not in got.err, f"traceback ({why}):\n{got.err[-3000:]}"
    assert got.code in (0, 2), f"exit {got.code} ({why}): {got.err[-2000:]}"
    if case.expect is not None:
        assert got.code == case.expect, f"exit {got.code}, expected {case.expect} ({why})"
    if got.code == 2:
        problem = message_problem(got.err.rstrip("\n"), config)
        assert problem is None, f"{problem} ({why}): {got.err!r}"[:3000]
    assert got.max_rss < MAX_RSS, f"peak RSS {got.max_rss / 2**20:.0f} MB ({why})"


# the named cases that also run through the real CLI (every named case runs in-process)
CLI_NAMED = [
    "valid readyctl.yaml",
    "valid env-only.yaml",
    "non-UTF-8 bytes",
    "recursive alias",
    "900-deep nesting",
    "1000-long extends chain",
    "extends as a list",
    "impossible date",
    "!!timestamp on a non-date",
    "scalar environment extended",
    "path over 255 bytes",
    "mixed key types",
    "infinite weight",
    "billion laughs",
    "billion laughs through interpolation",
    "unknown report format",
]


@pytest.mark.parametrize("name", CLI_NAMED)
def test_named_case_through_the_cli(name: str, tmp_path: Path) -> None:
    check_cli_case(named_cases()[name], tmp_path, SEED)


@pytest.mark.parametrize("index", range(CLI_SAMPLE))
def test_generated_case_through_the_cli(index: int, tmp_path: Path) -> None:
    # spread the sample over the run: the same indices the batches validate in-process
    i = index * max(1, CASES // CLI_SAMPLE)
    check_cli_case(generated_case(SEED, i), tmp_path, SEED)


def _case(seed: int, key: str) -> Case:
    """A case by its key in a batch: a generated case's index, or `named:NAME`."""
    if key.startswith("named:"):
        return named_cases()[key[len("named:") :]]
    return generated_case(seed, int(key))


def run_batch(keys: list[str], directory: Path) -> list[str]:
    """Validate cases in one child process (RLIMIT_AS); what went wrong, one entry a case."""
    results = directory / "results.jsonl"
    (directory / "keys.json").write_text(json.dumps(keys))
    cmd = [
        sys.executable,
        "-c",
        "from tests.engine.test_config_fuzz import worker_main; worker_main()",
        str(SEED),
        str(directory),
    ]
    got = run_limited(cmd, ROOT, 120 + 2 * CASE_TIMEOUT_S + len(keys))
    lines = [json.loads(x) for x in results.read_text().splitlines()] if results.exists() else []
    done = {r["key"]: r for r in lines if r["event"] == "done"}
    failures = []
    for i, key in enumerate(keys):
        r = done.get(key)
        if r is None:
            continue
        case = _case(SEED, key)
        config = directory / str(i) / "readyctl.yaml"
        if r["outcome"] == "crash":
            problem: str | None = f"internal error:\n{r['detail'][-3000:]}\n"
        elif r["outcome"] == "hang":
            problem = f"hung past {CASE_TIMEOUT_S} s"
        elif case.expect is not None and r["code"] != case.expect:
            problem = f"exit {r['code']}, expected {case.expect}: {r.get('detail', '')[:500]!r}"
        elif r["outcome"] == "error":
            problem = message_problem(r["detail"], config)
            if problem is not None:
                problem += f": {r['detail'][:500]!r}"
        else:
            problem = None if r["code"] == 0 else f"exit {r['code']}"
        if problem is not None:
            failures.append(f"{problem} ({_replay(SEED, case, config)})")
    if len(done) != len(keys):
        started = [r["key"] for r in lines if r["event"] == "start"] or keys[:1]
        i = keys.index(started[-1])
        failures.append(
            f"the worker stopped (exit {got.code}, timed out: {got.timed_out}) in case "
            f"{_replay(SEED, _case(SEED, keys[i]), directory / str(i) / 'readyctl.yaml')}\n"
            f"{got.err[-3000:]}"
        )
    if got.max_rss >= MAX_RSS:
        failures.append(f"peak RSS {got.max_rss / 2**20:.0f} MB over the batch (seed {SEED})")
    if not any(r["outcome"] == "error" for r in done.values()):
        failures.append("no case was invalid: the mutations do nothing")
    return failures


def test_named_cases_in_process(tmp_path: Path) -> None:
    failures = run_batch([f"named:{name}" for name in named_cases()], tmp_path)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("chunk", range((CASES + CHUNK - 1) // CHUNK))
def test_generated_cases_in_process(chunk: int, tmp_path: Path) -> None:
    """A batch in one child process, as `readyctl check --plan` validates a config."""
    keys = [str(i) for i in range(chunk * CHUNK, min(CASES, (chunk + 1) * CHUNK))]
    failures = run_batch(keys, tmp_path)
    assert not failures, f"{len(failures)} of {len(keys)} cases failed:\n" + "\n".join(
        failures[:10]
    )


class _Hang(BaseException):
    pass


def worker_main() -> None:
    """Child process: validate the cases in DIR/keys.json, one by one, like the CLI does."""
    seed, directory = int(sys.argv[1]), Path(sys.argv[2])
    keys = json.loads((directory / "keys.json").read_text())
    os.environ.clear()
    os.environ.update(_child_env())
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    from readyctl.cli._run import RunOptions, execute_report
    from readyctl.errors import ReadyctlError

    def alarm(signum: int, frame: Any) -> None:
        raise _Hang

    signal.signal(signal.SIGALRM, alarm)
    with (directory / "results.jsonl").open("w", encoding="utf-8") as log:

        def record(**kw: Any) -> None:
            log.write(json.dumps(kw) + "\n")
            log.flush()

        for i, key in enumerate(keys):
            record(event="start", key=key)
            config = _case(seed, key).write(directory / str(i))
            outcome: dict[str, Any] = {}
            signal.alarm(CASE_TIMEOUT_S)
            try:
                sink = io.StringIO()
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    code, _ = execute_report(
                        RunOptions(
                            config=config, plan=True, quiet=True, no_color=True, history=False
                        )
                    )
                outcome = {"outcome": "ok", "code": code}
            except ReadyctlError as e:  # what the CLI prints as one line and exits 2 on
                outcome = {"outcome": "error", "code": e.exit_code, "detail": str(e)}
            except _Hang:
                outcome = {"outcome": "hang", "code": None}
            except BaseException:  # the CLI would call this an internal error (exit 4)
                outcome = {"outcome": "crash", "code": 4, "detail": traceback.format_exc()}
            finally:
                signal.alarm(0)
            record(event="done", key=key, **outcome)


def test_generator_is_deterministic() -> None:
    assert generated_case(7, 3).text == generated_case(7, 3).text
    texts = {generated_case(SEED, i).text for i in range(10)}
    assert len(texts) > 7
