"""`readyctl schema`: JSON Schema of readyctl.yaml (and, with --report, of readiness.json)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the command."""

    @app.command(
        "schema",
        help="Print the JSON Schema of readyctl.yaml for editors.\n\n"
        "Example:\n\n  readyctl schema > readyctl.schema.json",
    )
    def schema(
        report: bool = typer.Option(False, "--report", help="Print readiness.json's schema."),
        runbook: bool = typer.Option(False, "--runbook", help="Print a runbook file's schema."),
    ) -> None:
        import json

        if runbook:
            from readyctl.runbook.model import runbook_json_schema

            typer.echo(json.dumps(runbook_json_schema(), indent=2, default=str))
            return
        if report:
            from readyctl.report_schema import REPORT_SCHEMA

            typer.echo(json.dumps(REPORT_SCHEMA, indent=2))
            return
        from readyctl.config import config_json_schema

        typer.echo(json.dumps(config_json_schema(), indent=2, default=str))
