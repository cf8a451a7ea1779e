"""`readyctl list` and `readyctl explain ID`: the catalog of checks."""

from __future__ import annotations

import json
from typing import Any

import typer

_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_FORMATS = {"date": "date", "date-time": "datetime"}
_BOUNDS = (
    ("exclusiveMinimum", ">"),
    ("minimum", ">="),
    ("exclusiveMaximum", "<"),
    ("maximum", "<="),
)


def settings_rows(model: Any) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of every setting of a CheckSettings model.

    Taken from the model's JSON schema, so `explain` shows what `readyctl schema` checks.
    Keys of nested models are dotted (`deprecated[].sunset`: a mapping inside a list).
    """
    schema = model.model_json_schema()
    rows: list[tuple[str, str, str, str]] = []
    _walk(schema, schema.get("$defs", {}), "", rows)
    return rows


MAX_SETTINGS_DEPTH = 6  # a recursive type (a JSON value, a policy's `prepare`) stops here


def _walk(
    obj: dict[str, Any], defs: dict[str, Any], prefix: str, rows: list[Any], depth: int = 0
) -> None:
    if depth > MAX_SETTINGS_DEPTH:
        return
    for key, node in obj.get("properties", {}).items():
        if "default" in node:
            default = _default_text(node["default"])
        else:  # not required: a default_factory (an empty list or mapping)
            default = "required" if key in obj.get("required", ()) else "empty"
        rows.append((prefix + key, _type_text(node, defs), default, node.get("description", "")))
        for suffix, nested in _nested_models(node, defs):
            if nested is not obj:  # a model containing itself is listed once
                _walk(nested, defs, f"{prefix}{key}{suffix}.", rows, depth + 1)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    return defs.get(ref.rsplit("/", 1)[-1], {}) if ref.startswith("#/$defs/") else node


def _nested_models(
    node: dict[str, Any], defs: dict[str, Any], suffix: str = "", depth: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """Models reachable from `node` through unions and lists, with the key suffix ("[]")."""
    node = _resolve(node, defs)
    if "properties" in node:
        return [(suffix, node)]
    found: list[tuple[str, dict[str, Any]]] = []
    if depth > MAX_SETTINGS_DEPTH:
        return found
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        found += _nested_models(branch, defs, suffix, depth + 1)
    if isinstance(node.get("items"), dict):
        found += _nested_models(node["items"], defs, suffix + "[]", depth + 1)
    return found


def _type_text(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> str:
    """A short type: `str`, `float (> 0)`, `list[str]`, `"auto" | bool`, `mapping`."""
    if depth > MAX_SETTINGS_DEPTH:
        return "any"
    bounds = [f"{word} {_number(node[k])}" for k, word in _BOUNDS if k in node]
    text = _bare_type(node, defs, depth)
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _bare_type(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> str:
    node = _resolve(node, defs)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        parts = [_type_text(b, defs, depth + 1) for b in branches if b.get("type") != "null"]
        return " | ".join(dict.fromkeys(parts)) or "null"
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        return f"list[{_type_text(items, defs, depth + 1)}]" if isinstance(items, dict) else "list"
    if kind == "object":
        extra = node.get("additionalProperties")
        if "properties" not in node and isinstance(extra, dict):
            return f"dict[str, {_type_text(extra, defs, depth + 1)}]"
        return "mapping"
    if kind == "string":
        return _FORMATS.get(node.get("format", ""), "str")
    if isinstance(kind, list):
        return " | ".join(_JSON_TYPES.get(k, k) for k in kind if k != "null")
    if "properties" in node:
        return "mapping"
    return _JSON_TYPES.get(kind, "any") if kind else "any"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    return json.dumps(value, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    """Add the commands."""

    @app.command(
        "list",
        help="List every check: id, severity, category, safety.\n\n"
        "Examples:\n\n  readyctl list\n\n  readyctl list --format json",
    )
    def list_(
        format: str = typer.Option("table", "--format", "-f", help="table or json."),
        only: list[str] = typer.Option(
            [], "--only", help="Id glob, tag or category (repeat, or a comma list)."
        ),
    ) -> None:
        import json

        from readyctl.cli._ui import make_console
        from readyctl.registry import load_catalog
        from readyctl.runner import select

        if format not in ("table", "json"):
            typer.echo(f"error: --format {format!r}: choose table or json", err=True)
            raise typer.Exit(2)
        from readyctl.cli._run import split_patterns

        checks = select(load_catalog(), split_patterns(only), ())
        if format == "json":
            rows = [
                {
                    "id": c.meta.id,
                    "title": c.meta.title,
                    "failure_title": c.meta.failure_title,
                    "severity": c.meta.severity.value,
                    "category": c.meta.category.value,
                    "requires": [r.value for r in c.meta.requires],
                    "safety": c.meta.safety.value,
                    "exclusive": c.meta.exclusive,
                    "tags": list(c.meta.tags),
                    "refs": list(c.meta.refs),
                }
                for c in checks
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        ui = make_console()
        table = Table(title=f"{len(checks)} checks", title_justify="left")
        for col in ("Id", "Severity", "Category", "Safety", "Requires", "Title"):
            table.add_column(col, overflow="fold")
        for c in checks:
            m = c.meta
            table.add_row(
                m.id,
                m.severity.value,
                m.category.value,
                m.safety.value,
                ",".join(r.value for r in m.requires),
                m.title,
            )
        ui.out.print(table)

    @app.command(
        "explain",
        help="Explain one check: why it matters, how to fix it, which seed item.\n\n"
        "Example:\n\n  readyctl explain env.required",
    )
    def explain(
        check_id: str = typer.Argument(..., help="The check id, e.g. env.required."),
    ) -> None:
        from rich.markup import escape

        from readyctl.cli._ui import make_console
        from readyctl.registry import load_catalog

        catalog = load_catalog()
        if check_id not in catalog.checks:
            import difflib

            close = difflib.get_close_matches(check_id, catalog.ids(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else " See `readyctl list`."
            typer.echo(f"error: unknown check id {check_id!r}.{hint}", err=True)
            raise typer.Exit(2)
        cls = catalog.get(check_id)
        m = cls.meta
        out = make_console().out
        out.print(
            f"[bold]{escape(m.id)}[/]  {m.severity.value} · {m.category.value} · {m.safety.value}"
        )
        out.print(f"  pass: {escape(m.title)}")
        out.print(f"  fail: {escape(m.failure_title)}")
        out.print(f"\n[bold]Why[/]\n  {escape(m.description)}")
        out.print(f"\n[bold]How to fix[/]\n  {escape(m.remediation.text)}")
        if m.remediation.snippet:
            out.print("")
            for line in m.remediation.snippet.splitlines():
                out.print(f"    {escape(line)}", style="cyan")
        if m.remediation.link:
            out.print(f"  {m.remediation.link}")
        extra = getattr(cls, "explain_extra", None)
        if callable(extra):
            out.print("")
            out.print(extra())
        _print_settings(out, cls)
        out.print(f"\n[bold]Needs[/]  {', '.join(r.value for r in m.requires) or 'nothing'}")
        if m.refs:
            out.print(f"[bold]Seed items[/]  {', '.join(m.refs)}")
        if m.tags:
            out.print(f"[bold]Tags[/]  {', '.join(m.tags)}")
        out.print(f"[bold]Timeout[/]  {m.timeout_s:g} s{'  (exclusive)' if m.exclusive else ''}")


def _print_settings(out: Any, cls: Any) -> None:
    """The check's settings: key, type, default and what it does (or "none")."""
    from rich.markup import escape

    model = getattr(cls, "Settings", None)
    if model is None:
        out.print("\n[bold]Settings[/]  not declared (a free-form mapping)")
        return
    rows = settings_rows(model)
    if not rows:
        out.print("\n[bold]Settings[/]  none")
        return
    out.print(
        f"\n[bold]Settings[/]  readyctl.yaml: checks: {{{escape(cls.meta.id)}: {{KEY: VALUE}}}}"
    )
    for key, kind, default, description in rows:
        line = f"  {key}: {kind} = {default}"
        if description:
            line += f" — {description}"
        out.print(escape(line), soft_wrap=True)
