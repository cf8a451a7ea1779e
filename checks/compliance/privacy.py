"""compliance.privacy: GDPR export and deletion work, proven on a throwaway account."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import Field
from readyctl.checks.auth._login import bearer, dig, login_request, login_spec
from readyctl.checks.health._http import Answer, TargetError, fetch

from readyctl import mailbox
from readyctl.apimap import Route, RouteUnknown
from readyctl.check import (
    Capability,
    Category,
    Check,
    CheckMeta,
    CheckSettings,
    RemediationSpec,
    Safety,
    Severity,
)
from readyctl.context import Context, token_paths
from readyctl.result import ErrorReason, Result

EXPORT = "data export"
DELETE = "account deletion"
MAX_EXPORT = 20_000_000
MAX_RETRY_AFTER_S = 70.0  # one rate-limit window of a sign-up route, at most
_REFUSED = (400, 401, 403, 404, 422)


class Settings(CheckSettings):
    """Settings of compliance.privacy."""

    email_domain: str = Field(
        "example.com", description="domain of the throwaway account's address (readyctl-privacy-…)"
    )
    register_body: dict[str, Any] = Field(
        default_factory=dict,
        description="constant fields the register route needs besides username and password",
    )
    delete_body: dict[str, Any] | None = Field(
        None,
        description="JSON body of the deletion; '{password}' stands for the account's password",
    )
    verify: str = Field(
        "auto",
        pattern="^(auto|postmark|none)$",
        description="how a throwaway account that must verify its email gets the token: auto "
        "(Postmark's outbound messages API when its variables are set), postmark, none",
    )
    mail_url_var: str = Field(
        "READYCTL_MAIL_URL", description="variable with the mail API's URL (default Postmark's)"
    )
    mail_token_var: str = Field(
        "READYCTL_MAIL_TOKEN", description="variable with the mail API's server token"
    )
    verify_token_regex: str = Field(
        r"token[=:]\s*([A-Za-z0-9_\-\.]{16,})",
        description="regex whose group 1 is the verification token in the email's text",
    )
    verify_field: str = Field("token", description="field of api.verify_email taking the token")
    request_timeout_s: float = Field(15.0, gt=0, le=120, description="budget of each request")


class Skip(Exception):
    """Both subjects cannot be judged: skip them with this reason."""


class Account:
    """The throwaway account: never the test account, deleted by the check."""

    def __init__(self, domain: str) -> None:
        run = secrets.token_hex(5)
        self.email = f"readyctl-privacy-{run}@{domain}"
        self.password = f"Readyctl-{secrets.token_urlsafe(12)}-9a"
        self.token: str | None = None
        self.deleted = False
        # the session came from the sign-up answer: the account may not log in yet (its email
        # is unverified), so a refused login after the deletion proves nothing
        self.from_signup = False


class Privacy(Check):
    """Register a throwaway account, export its data, delete it, and try to log in again.

    Routes come from the API map: `register`, `login`, `privacy_export` (GET or POST),
    `account_delete` (DELETE), and `verify_email` when a new account must verify its address
    before it may log in (the token is read from Postmark's outbound-messages API, or any API
    of that shape, at `READYCTL_MAIL_URL` with `READYCTL_MAIL_TOKEN`). The test account is
    never used: when the map has a `me` route, the throwaway session must answer as the
    throwaway address before anything is deleted.

    - data export: 200 with the account's own data (its address appears in the export);
      a 202 (asynchronous export) is not verifiable here and skips.
    - account deletion: 2xx, then a login with the same password is refused.

    Runs in the exclusive phase after the load and outage checks and before
    ratelimit.policies, which spends the sign-up route's window (a later run would wait a
    whole window for a registration); a 429 on registration is waited out once, up to
    70 s, when it says how long (Retry-After).
    """

    meta = CheckMeta(
        id="compliance.privacy",
        title="GDPR data export and deletion work",
        failure_title="GDPR data export or deletion is broken",
        description=(
            "Users may ask for a copy of their data and for its erasure (GDPR Art. 15, 17 and "
            "20); an export that leaves their data out or a deletion that leaves the account "
            "able to log in is a regulator's finding. See https://gdpr-info.eu/art-17-gdpr/."
        ),
        remediation=RemediationSpec(
            text="Give authenticated users an export of everything stored about them and a "
            "deletion that erases the account (its sessions and tokens too), and tell readyctl "
            "the routes.",
            snippet="environments:\n  production:\n    api:\n"
            "      privacy_export: /v1/account/export      # GET\n"
            "      account_delete: /v1/account             # DELETE\n"
            "      verify_email: /v1/auth/verify-email     # when sign-ups verify their email",
            link="https://gdpr-info.eu/art-17-gdpr/",
        ),
        category=Category.COMPLIANCE,
        severity=Severity.LOW,
        requires=(Capability.HTTP,),
        safety=Safety.MUTATING,
        exclusive=True,
        order=45,
        timeout_s=150,
        tags=("compliance", "gdpr", "seed"),
        refs=("20",),
    )
    Settings = Settings

    def run(self, ctx: Context) -> Iterator[Result]:
        """A data export result and an account deletion result."""
        s: Settings = ctx.settings()
        api = ctx.api()
        routes: dict[str, Route | None] = {}
        for subject, key in ((EXPORT, "privacy_export"), (DELETE, "account_delete")):
            routes[subject] = api.get(key)
            if routes[subject] is None:
                why = "the caller's own data export" if subject == EXPORT else "account erasure"
                yield self.skipped(subject, RouteUnknown(key, ctx.env_name, why).message)
        wanted = [k for k, v in routes.items() if v is not None]
        if not wanted:
            return
        client = ctx.http(timeout=s.request_timeout_s, max_body=MAX_EXPORT)
        account = Account(s.email_domain)
        ctx.redactor.add(account.password)
        try:
            self._sign_up(ctx, client, account, s)
        except (Skip, RouteUnknown) as e:
            reason = e.message if isinstance(e, RouteUnknown) else str(e)
            for subject in wanted:
                yield self.skipped(subject, reason, evidence={"account": account.email})
            return
        except TargetError as e:
            for subject in wanted:
                yield self.errored(subject, e.reason, e.detail)
            return
        export, delete = routes[EXPORT], routes[DELETE]
        if export is not None:
            try:
                yield self._export(ctx, client, account, export)
            except TargetError as e:
                yield self.errored(EXPORT, e.reason, e.detail)
        if delete is not None:
            try:
                yield self._delete(ctx, client, account, delete, export, s)
            except TargetError as e:
                yield self.errored(DELETE, e.reason, e.detail, evidence={"left": account.email})

    # -- the throwaway account --------------------------------------------------------------
    def _sign_up(self, ctx: Context, client: httpx.Client, account: Account, s: Settings) -> None:
        """Register, verify the address when the API asks for it, log in, and make sure the
        session is the throwaway account's (never the test account's)."""
        api = ctx.api()
        register = api.need("register", "a throwaway account to export and delete")
        spec = login_spec(ctx, "the throwaway account logs in")
        test_user = ctx.environ.get(spec.username_var, "")
        if test_user and test_user.strip().lower() == account.email:
            raise Skip("refused: the throwaway address is the test account's")
        body = {
            **s.register_body,
            register.username_field: account.email,
            register.password_field: account.password,
        }
        answer = self._send(ctx, client, register.method, register.path, body, s)
        if answer.status == 429:
            wait = _retry_after(answer)
            if wait is None or wait > min(MAX_RETRY_AFTER_S, ctx.remaining() - 30):
                raise TargetError(
                    ErrorReason.INCONCLUSIVE,
                    f"registration at {register.path} answered 429 (rate limited) without a "
                    "wait readyctl can afford; run the check when the sign-up window is free",
                )
            time.sleep(wait)
            answer = self._send(ctx, client, register.method, register.path, body, s)
        if not answer.ok:
            raise TargetError(
                ErrorReason.INCONCLUSIVE,
                f"registration at {register.method} {register.path} answered {answer.status} "
                f"({answer.snippet(120)}); give the fields it needs in "
                f"checks.{self.id}.register_body",
            )
        token = self._login(ctx, client, account)
        signup_token = _signup_token(answer)
        if token is None and signup_token is not None and not _can_verify(ctx, s):
            token = signup_token  # the API signs new accounts in; their login waits for email
            account.from_signup = True
        if token is None:
            self._verify_email(ctx, client, account, s)
            token = self._login(ctx, client, account)
            if token is None:
                raise TargetError(
                    ErrorReason.INCONCLUSIVE,
                    "the throwaway account still cannot log in after its email was verified",
                )
        account.token = token
        ctx.redactor.add(token)
        if api.me:
            who = fetch(ctx, client, "GET", api.me, headers=bearer(ctx, token))
            text = who.body.decode("utf-8", "replace").lower()
            if who.ok and test_user and test_user.strip().lower() in text:
                raise Skip("refused: the new session answers as the test account")
            if who.ok and account.email not in text:
                raise Skip(
                    f"refused: {api.me} does not answer as the throwaway account, so readyctl "
                    "cannot be sure whose data it would delete"
                )

    def _send(
        self, ctx: Context, client: httpx.Client, method: str, path: str, body: Any, s: Settings
    ) -> Answer:
        return fetch(ctx, client, method, path, json_body=body, budget_s=s.request_timeout_s)

    def _login(self, ctx: Context, client: httpx.Client, account: Account) -> str | None:
        """The access token of a login as the throwaway account, None when refused."""
        answer = login_request(ctx, client, account.email, account.password)
        if answer.status in _REFUSED:
            return None
        if not answer.ok:
            raise TargetError(
                ErrorReason.INCONCLUSIVE, f"the throwaway account's login answered {answer.status}"
            )
        data = answer.json()
        access, _ = token_paths(login_spec(ctx), data)
        token = dig(data, access)
        if not isinstance(token, str) or not token:
            raise TargetError(ErrorReason.INCONCLUSIVE, "the login answer has no access token")
        return token

    def _verify_email(
        self, ctx: Context, client: httpx.Client, account: Account, s: Settings
    ) -> None:
        """Read the verification token from the mail API's outbound messages and post it."""
        api = ctx.api()
        mail_url = ctx.environ.get(s.mail_url_var) or ""
        mail_token = ctx.environ.get(s.mail_token_var) or ""
        if mail_token:
            ctx.redactor.add(mail_token)
        if s.verify == "none" or api.verify_email is None or not mail_token:
            needs = []
            if api.verify_email is None:
                needs.append(f"environments.{ctx.env_name}.api.verify_email")
            if not mail_token:
                needs.append(f"{s.mail_url_var} and {s.mail_token_var} (Postmark's API)")
            raise Skip(
                f"the throwaway account {account.email} may not log in before its email is "
                "verified, and readyctl cannot read that email"
                + (f": set {' and '.join(needs)}" if needs and s.verify != "none" else "")
                + "; the account is left unverified"
            )
        headers = mailbox.headers(mail_token)
        mail = ctx.http(timeout=s.request_timeout_s, max_body=2_000_000)
        message_id = None
        for _ in range(10):
            where = mailbox.outbound_url(mail_url, account.email)
            listing = fetch(ctx, mail, "GET", where, headers=headers)
            ids = dig(listing.json(), "Messages.0.MessageID") if listing.ok else None
            if isinstance(ids, str) and ids:
                message_id = ids
                break
            ctx.check_deadline()
            time.sleep(0.5)
        if message_id is None:
            raise TargetError(
                ErrorReason.INCONCLUSIVE,
                f"no verification email to {account.email} reached the mail API in 5 s",
            )
        where = mailbox.details_url(mail_url, message_id)
        details = fetch(ctx, mail, "GET", where, headers=headers)
        data = details.json() if details.ok else None
        text = " ".join(
            str(dig(data, k) or "") for k in ("TextBody", "HtmlBody") if isinstance(data, dict)
        )
        m = re.search(s.verify_token_regex, text)
        if not m:
            raise TargetError(
                ErrorReason.INCONCLUSIVE,
                f"the verification email has no token matching checks.{self.id}.verify_token_regex",
            )
        token = m.group(1)
        ctx.redactor.add(token)
        route = api.verify_email
        answer = self._send(ctx, client, route.method, route.path, {s.verify_field: token}, s)
        if not answer.ok:
            raise TargetError(
                ErrorReason.INCONCLUSIVE,
                f"email verification at {route.path} answered {answer.status}",
            )

    # -- the two rights ----------------------------------------------------------------------
    def _export(self, ctx: Context, client: httpx.Client, account: Account, route: Route) -> Result:
        assert account.token is not None
        answer = fetch(
            ctx,
            client,
            route.method,
            route.path,
            headers={**bearer(ctx, account.token), "Accept": "application/json"},
            cap=MAX_EXPORT,
            budget_s=30,
        )
        subject = EXPORT
        evidence: dict[str, Any] = {
            "route": f"{route.method} {route.path}",
            "status": answer.status,
            "bytes": len(answer.body),
            "content_type": answer.headers.get("content-type"),
            "account": account.email,
        }
        if answer.status == 202:
            return self.skipped(
                subject,
                f"{route.method} {route.path} answered 202: the export is asynchronous and "
                "readyctl cannot follow it to the file",
                evidence=evidence,
            )
        if not answer.ok:
            return self.failed(
                subject,
                f"{route.method} {route.path} answered {answer.status} to the account's own "
                "session: the user cannot get their data",
                evidence={**evidence, "body": answer.snippet(200)},
            )
        where = _holds(answer.body, account.email)
        link = None if where else _download_link(answer)
        if link is not None:  # {"download_url": ...}: the file is one hop away
            evidence["download"] = link.split("?", 1)[0]
            same_origin = link.startswith("/") or link.startswith(str(client.base_url))
            headers = bearer(ctx, account.token) if same_origin else {}
            got = fetch(ctx, client, "GET", link, headers=headers, cap=MAX_EXPORT, budget_s=30)
            evidence["download_status"] = got.status
            where = _holds(got.body, account.email) if got.ok else None
            if where:
                where = f"the file at {evidence['download']}: {where}"
        if not where:
            return self.failed(
                subject,
                f"{route.method} {route.path} answered {answer.status} but the export does not "
                "contain the account's own data (its email address is not in it)",
                evidence={**evidence, "body": answer.snippet(200)},
            )
        evidence["found_in"] = where
        return self.passed(
            subject,
            f"{route.method} {route.path} exports the account's own data "
            f"({len(answer.body)} bytes; its address is in {where})",
            evidence=evidence,
        )

    def _delete(
        self,
        ctx: Context,
        client: httpx.Client,
        account: Account,
        route: Route,
        export: Route | None,
        s: Settings,
    ) -> Result:
        assert account.token is not None
        body = _fill(s.delete_body, account.password) if s.delete_body is not None else None
        answer = fetch(
            ctx,
            client,
            route.method,
            route.path,
            json_body=body,
            headers=bearer(ctx, account.token),
            budget_s=30,
        )
        evidence: dict[str, Any] = {
            "route": f"{route.method} {route.path}",
            "status": answer.status,
            "account": account.email,
        }
        if not answer.ok:
            return self.failed(
                DELETE,
                f"{route.method} {route.path} answered {answer.status}: the account "
                f"{account.email} was not deleted (left on the target)",
                evidence={**evidence, "body": answer.snippet(200), "left": account.email},
            )
        again = login_request(ctx, client, account.email, account.password)
        evidence["login_after"] = again.status
        old_reads: bool | None = None  # the old session still reads the account's data
        probes = [export] if export is not None else []
        me = ctx.api().me
        if me:
            probes.append(Route(method="GET", path=me))
        after: dict[str, int] = {}
        for probe in probes:
            old = fetch(ctx, client, probe.method, probe.path, headers=bearer(ctx, account.token))
            after[f"{probe.method} {probe.path}"] = old.status
            reads = old.ok and _holds(old.body, account.email) is not None
            old_reads = reads if old_reads is None else (old_reads or reads)
        evidence["after_deletion"] = after
        if account.from_signup:
            # the login was refused before the deletion too: only the old session can tell
            if old_reads is None:
                return self.skipped(
                    DELETE,
                    f"{route.method} {route.path} answered {answer.status}, but the account "
                    "never could log in (unverified) and the map has neither me nor an "
                    "export to ask with its old session: readyctl cannot tell it is gone",
                    evidence={**evidence, "left": account.email},
                )
            if old_reads:
                return self.failed(
                    DELETE,
                    f"{route.method} {route.path} answered {answer.status}, yet the old "
                    f"session still reads {account.email}'s data: nothing was erased",
                    evidence={**evidence, "left": account.email},
                )
            account.deleted = True
            return self.passed(
                DELETE,
                f"{route.method} {route.path} answered {answer.status} and the account's old "
                "session no longer reads its data",
                evidence=evidence,
            )
        if again.ok:
            return self.failed(
                DELETE,
                f"{route.method} {route.path} answered {answer.status}, yet the account still "
                f"logs in: nothing was erased ({account.email} is left on the target)",
                evidence={**evidence, "left": account.email},
            )
        account.deleted = True
        if (
            export is not None
            and after.get(f"{export.method} {export.path}", 0) < 300
            and (old_reads)
        ):
            return self.warned(
                DELETE,
                f"{route.method} {route.path} answered {answer.status} and the login is refused "
                f"({again.status}), but the old session still exports {account.email}'s data: "
                "the data outlives the account, or tokens stay valid after deletion",
                evidence=evidence,
            )
        return self.passed(
            DELETE,
            f"{route.method} {route.path} answered {answer.status} and the account's login is "
            f"refused afterwards ({again.status})",
            evidence=evidence,
        )


def _signup_token(answer: Answer) -> str | None:
    """An access token in the sign-up answer (APIs that sign new accounts in), or None."""
    from readyctl.apimap import find_token_paths

    data = answer.json()
    access, _ = find_token_paths(data)
    token = dig(data, access) if access else None
    return token if isinstance(token, str) and token else None


def _can_verify(ctx: Context, s: Settings) -> bool:
    """Whether the account's email can be verified (then the login is the better proof)."""
    token = ctx.environ.get(s.mail_token_var)
    return s.verify != "none" and ctx.api().verify_email is not None and bool(token)


MAX_MEMBERS = 200  # files of an export archive looked into


def _holds(body: bytes, email: str) -> str | None:
    """Where the address appears in an export: the answer itself, or a member of a zip
    archive (the usual "download your data" file); None when nowhere."""
    needle = email.lower().encode()
    if needle in body.lower():
        return "the answer"
    if not body.startswith(b"PK\x03\x04"):
        return None
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            budget = MAX_EXPORT
            for info in archive.infolist()[:MAX_MEMBERS]:
                if info.is_dir() or info.file_size > budget:
                    continue
                budget -= info.file_size
                with archive.open(info) as member:
                    if needle in member.read(info.file_size + 1).lower():
                        return f"{info.filename} of the archive"
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return None
    return None


_LINK_KEYS = ("download_url", "downloadUrl", "url", "href", "link", "location", "file")


def _download_link(answer: Answer) -> str | None:
    """A download link the export answered with instead of the data (one hop, http(s) or a
    path): a JSON key such as download_url, at the top or under `data`."""
    data = answer.json()
    candidates: list[Any] = []
    if isinstance(data, dict):
        candidates = [data.get(k) for k in _LINK_KEYS]
        nested = data.get("data")
        if isinstance(nested, dict):
            candidates += [nested.get(k) for k in _LINK_KEYS]
    for value in candidates:
        if isinstance(value, str) and (
            value.startswith(("https://", "http://")) or value.startswith("/")
        ):
            return value
    return None


def _fill(body: Any, password: str) -> Any:
    """The deletion body with '{password}' replaced by the account's password."""
    if isinstance(body, dict):
        return {k: _fill(v, password) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, password) for v in body]
    if isinstance(body, str):
        return body.replace("{password}", password)
    return body


def _retry_after(answer: Answer) -> float | None:
    """Seconds a 429 asks to wait (Retry-After or RateLimit-Reset as seconds), or None."""
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        raw = answer.headers.get(name)
        if raw and raw.strip().isdigit():
            return float(raw.strip()) + 0.5
    return None
