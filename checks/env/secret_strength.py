"""env.secret_strength: secrets are long enough and random enough."""

from __future__ import annotations

from collections.abc import Iterator

from readyctl.checks.env._rules import entropy_bits_per_char, is_secret

from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Severity,
)
from readyctl.context import Context
from readyctl.result import Result


class Settings(CheckSettings):
    """env.secret_strength takes no settings (its rules come from the config's `env:` section)."""


class EnvSecretStrength(Check):
    """Minimum length and an entropy floor for every secret variable."""

    meta = CheckMeta(
        id="env.secret_strength",
        title="Secrets meet length and entropy floors",
        failure_title="Secrets are too short or too predictable",
        description=(
            "A short or low-entropy signing secret lets an attacker brute-force it offline and "
            "forge tokens for any user. HS256 keys need at least 256 bits (RFC 7518 3.2)."
        ),
        remediation=RemediationSpec(
            text="Generate the secret with a CSPRNG, at least 32 characters (JWT_SECRET), and "
            "rotate it.",
            snippet="python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            link="https://datatracker.ietf.org/doc/html/rfc7518#section-3.2",
        ),
        category=Category.SECRETS,
        severity=Severity.CRITICAL,
        requires=(Capability.ENV,),
        tags=("env", "seed", "secrets"),
        refs=("1", "3"),
        timeout_s=10,
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """One result per secret variable with a value; URL-shaped secrets are skipped."""
        env_cfg = ctx.env_config()
        src = ctx.env_source()
        found = 0
        for name, rule in sorted(env_cfg.rules.items()):
            value = src.values.get(name)
            if not value or not is_secret(name, rule, value) or rule.type not in ("str",):
                continue
            found += 1
            min_len = rule.min_length or 0
            floor = rule.entropy_min if rule.entropy_min is not None else env_cfg.secret_entropy_min
            bits = round(entropy_bits_per_char(value), 2)
            evidence = {"length": len(value), "entropy_bits_per_char": bits}
            if len(value) < min_len:
                yield self.failed(
                    name,
                    f"{name} is {len(value)} characters, under the minimum {min_len}",
                    measured=len(value),
                    threshold=min_len,
                    unit=" chars",
                    evidence=evidence,
                )
                continue
            if bits < floor:
                yield self.failed(
                    name,
                    f"{name} has {bits:g} bits of entropy per character, under the floor {floor:g}",
                    measured=bits,
                    threshold=floor,
                    unit=" bits/char",
                    evidence=evidence,
                )
            else:
                yield self.passed(
                    name,
                    f"{name} is {len(value)} characters with {bits:g} bits/char of entropy",
                    measured=bits,
                    threshold=floor,
                    unit=" bits/char",
                    evidence=evidence,
                )
        if not found:
            yield self.skipped("*", "no secret variable with a value has a rule")
