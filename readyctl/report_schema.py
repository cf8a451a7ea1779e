"""JSON Schema of readiness.json (schema_version 1), for consumers of the contract."""

from __future__ import annotations

from typing import Any

_STATUS = {"enum": ["pass", "warn", "fail", "skip", "blocked", "error"]}
_NUM_OR_STR = {"type": ["number", "string", "null"]}

CHECKLIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "since 0.2 (additive): coverage of the seed checklist's items 1-20 and "
    "critical paths; an unverified item at or above `require` makes the verdict inconclusive",
    "required": ["require", "summary", "items"],
    "properties": {
        "require": {"enum": ["critical", "high", "medium", "low", "info", "none"]},
        "summary": {
            "type": "object",
            "properties": {
                k: {"type": "integer"}
                for k in (
                    "verified",
                    "unverified",
                    "not_applicable",
                    "waived",
                    "attested",
                    "required_unverified",
                )
            },
        },
        "deploy_day": {"type": "string"},
        "attestations": {
            "type": "array",
            "description": "since 0.3 (additive): every attestation in readyctl.yaml as of the "
            "run's day: by, at, evidence, expires, days_left, expired, valid, problems",
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["item", "title", "priority", "status", "required", "checks"],
                "properties": {
                    "item": {
                        "type": "string",
                        "description": "1-20, critical_paths, or an attested item "
                        "(security_audit, legal_review, dr_tested, support_on_call)",
                    },
                    "title": {"type": "string"},
                    "priority": {"enum": ["critical", "high", "medium", "low"]},
                    "status": {
                        "enum": ["verified", "unverified", "not_applicable", "waived", "attested"]
                    },
                    "required": {"type": "boolean"},
                    "checks": {"type": "array", "items": {"type": "string"}},
                    "outcome": {"enum": ["pass", "warn", "fail", None]},
                    "verified_by": {"type": "array", "items": {"type": "string"}},
                    "missing": {
                        "type": "array",
                        "description": "per check: why nothing was scored and the setting "
                        "that would make it verifiable",
                        "items": {
                            "type": "object",
                            "properties": {
                                "check": {"type": "string"},
                                "reason": {"type": "string"},
                                "setting": {"type": "string"},
                            },
                        },
                    },
                    "declaration": {"type": ["object", "null"]},
                    "attestation": {
                        "type": ["object", "null"],
                        "description": "the attestation that speaks for the item (a signature "
                        "never passes a machine check)",
                    },
                    "paths": {
                        "type": "array",
                        "description": "critical paths (smoke `covers:`), each verified or not",
                    },
                },
            },
        },
    },
}

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

# The run this one compared with (`--baseline`); null when there was none. `run`,
# `started_at`, `verdict`, `pinned` and `selected_by` were added after `path`, `score`,
# `score_delta` and `changes`: older reports lack them.
BASELINE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "path": {"type": ["string", "null"], "description": "the baseline report read"},
        "run": {
            "type": ["string", "null"],
            "description": "history run id (file stem under the history directory) or a path",
        },
        "started_at": {"type": ["string", "null"]},
        "verdict": {"enum": ["ready", "not_ready", "inconclusive", None]},
        "score": {"type": ["number", "null"], "description": "the baseline run's score"},
        "score_delta": {"type": ["number", "null"], "description": "this score minus that one"},
        "pinned": {
            "type": "boolean",
            "description": "pinned with `readyctl baseline pin` (else the newest passing run)",
        },
        "selected_by": {"enum": ["pin", "newest_passing", "given"]},
        "changes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "subject", "from", "to"],
                "properties": {
                    "id": {"type": "string"},
                    "subject": {"type": "string"},
                    "from": _STATUS,
                    "to": _STATUS,
                },
            },
        },
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
                "block_on": {"enum": ["critical", "high", "medium", "low", "info"]},
                "require": {"enum": ["critical", "high", "medium", "low", "info", "none"]},
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
                                    "unverified",
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
        "target": {
            "type": "object",
            "properties": {
                "origin": {
                    "type": "object",
                    "description": "since 0.2: where each part of the target came from "
                    "(command line flag, READYCTL_* variable, readyctl.yaml file:line, managed "
                    "demo)",
                    "additionalProperties": {"type": "string"},
                }
            },
        },
        "checklist": CHECKLIST_SCHEMA,
        "api": {
            "type": ["object", "null"],
            "description": "since 0.3: the API map the checks used; each value with its source "
            "(config, openapi, oauth metadata, default, auth: (deprecated)); null when no HTTP "
            "check ran",
            "properties": {
                "values": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["value", "source"],
                        "properties": {"value": {"type": "string"}, "source": {"type": "string"}},
                    },
                },
                "openapi": {"type": ["string", "null"]},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
        },
        "started_at": {"type": "string", "format": "date-time"},
        "duration_s": {"type": "number"},
        "interrupted": {"type": "boolean"},
        "counts": {"type": "object"},
        "categories": {"type": "array"},
        "results": {"type": "array", "items": RESULT_SCHEMA},
        "selection_key": {"type": "string"},
        "baseline": BASELINE_SCHEMA,
    },
}
