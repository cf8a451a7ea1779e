"""`readyctl list` and `readyctl explain ID`: the catalog of checks."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the commands."""

    @app.command(
        "list",
        help="List every check: id, severity, category, safety.\n\n"
        "Examples:\n\n  readyctl list\n\n  readyctl list --format json",
    )
    def list_(
        format: str = typer.Option("table", "--format", "-f", help="table or json."),
        only: list[str] = typer.Option([], "--only", help="Id glob, tag or category (repeat)."),
    ) -> None:
        import json

        from readyctl.cli._ui import make_console
        from readyctl.registry import load_catalog
        from readyctl.runner import select

        if format not in ("table", "json"):
            typer.echo(f"error: --format {format!r}: choose table or json", err=True)
            raise typer.Exit(2)
        checks = select(load_catalog(), only, ())
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
        out.print(f"\n[bold]Needs[/]  {', '.join(r.value for r in m.requires) or 'nothing'}")
        if m.refs:
            out.print(f"[bold]Seed items[/]  {', '.join(m.refs)}")
        if m.tags:
            out.print(f"[bold]Tags[/]  {', '.join(m.tags)}")
        out.print(f"[bold]Timeout[/]  {m.timeout_s:g} s{'  (exclusive)' if m.exclusive else ''}")
