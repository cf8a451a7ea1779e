"""JSON Schema of readiness.json (schema_version 1), for consumers of the contract."""

from __future__ import annotations

from typing import Any

_STATUS = {"enum": ["pass", "warn", "fail", "skip", "blocked", "error"]}
_NUM_OR_STR = {"type": ["number", "string", "null"]}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "subject",
        "title",
        "category",
        "severity",
        "status",
        "score",
        "summary",
        "reason",
        "measured",
        "threshold",
        "evidence",
        "remediation",
        "duration_ms",
        "attempts",
        "waiver",
    ],
    "properties": {
        "id": {"type": "string"},
        "subject": {"type": "string"},
        "title": {"type": "string"},
        "category": {"type": "string"},
        "severity": {"enum": ["critical", "high", "medium", "low", "info"]},
        "status": _STATUS,
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "weight": {"type": ["number", "null"]},
        "summary": {"type": "string"},
        "reason": {"type": ["string", "null"]},
        "error_reason": {
            "enum": [None, "timeout", "connectivity", "config", "bug", "inconclusive"]
        },
        "measured": _NUM_OR_STR,
        "threshold": _NUM_OR_STR,
        "unit": {"type": ["string", "null"]},
        "evidence": {"type": "object"},
        "remediation": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "snippet": {"type": ["string", "null"]},
                "link": {"type": ["string", "null"]},
            },
        },
        "duration_ms": {"type": "number"},
        "attempts": {"type": "integer", "minimum": 1},
        "passed_on_retry": {"type": "boolean"},
        "waiver": {"type": ["object", "null"]},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "readiness.json",
    "type": "object",
    "required": [
        "schema_version",
        "score",
        "grade",
        "verdict",
        "gate",
        "environment",
        "target",
        "started_at",
        "duration_s",
        "results",
    ],
    "properties": {
        "schema_version": {"const": 1},
        "tool": {"type": "object"},
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
        "grade": {"enum": ["A+", "A", "B", "C", "D", "F", "-"]},
        "verdict": {"enum": ["ready", "not_ready", "inconclusive"]},
        "exit_code": {"enum": [0, 1, 3, 130]},
        "gate": {
            "type": "object",
            "required": ["passed", "reasons"],
            "properties": {
                "passed": {"type": "boolean"},
                "reasons": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {
                                "enum": [
                                    "blocking_fail",
                                    "score",
                                    "regression",
                                    "expired_waiver",
                                    "inconclusive",
                                    "interrupted",
                                ]
                            },
                            "message": {"type": "string"},
                            "check_id": {"type": ["string", "null"]},
                            "subject": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
        "environment": {"type": "object"},
        "target": {"type": "object"},
        "started_at": {"type": "string", "format": "date-time"},
        "duration_s": {"type": "number"},
        "interrupted": {"type": "boolean"},
        "counts": {"type": "object"},
        "categories": {"type": "array"},
        "results": {"type": "array", "items": RESULT_SCHEMA},
    },
}
