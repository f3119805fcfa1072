"""``ackmail auth login | status``: sign a mailbox in, and show how its tokens stand."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ingest.cli.context import CommandContext
from ingest.cli.output import render, to_json
from ingest.config import MailboxConfig, SmtpConfig
from ingest.errors import ConfigError
from ingest.timeutil import isoformat_z

if TYPE_CHECKING:
    from ingest.auth import AuthStatus, SignInResult

STATUS_COLUMNS = ("subject", "kind", "mailbox", "account", "signed_in", "access_token_expires",
                  "last_refresh", "refresh_token_idle_days", "client_secret_expires",
                  "certificate_expires", "warnings")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("auth", help="OAuth2 sign-in and token status")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    login = actions.add_parser("login", help="delegated sign-in for a mailbox (device code)")
    login.add_argument("mailbox", nargs="?", help="the [[mailbox]] name")
    login.add_argument("--smtp", action="store_true", help="sign in the [smtp] account instead")
    login.add_argument("--browser", action="store_true",
                       help="sign in in a browser (auth code + PKCE, loopback redirect)")
    login.set_defaults(handler=run_login)
    status = actions.add_parser("status", help="token expiry, last refresh, idle days, warnings")
    status.add_argument("mailbox", nargs="?", help="one [[mailbox]] name (default: all)")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=run_status)


def _subject(ctx: CommandContext) -> MailboxConfig | SmtpConfig:
    settings, args = ctx.settings, ctx.args
    if args.smtp:
        if settings.smtp is None:
            raise ConfigError(f"{settings.path}: there is no [smtp] table to sign in")
        return settings.smtp
    if not args.mailbox:
        raise ConfigError("name the mailbox to sign in: ackmail auth login MAILBOX (or --smtp)")
    return settings.mailbox(args.mailbox)


def run_login(ctx: CommandContext) -> int:
    from ingest.auth.errors import AuthError, IdentityProviderUnavailable

    try:
        result = _sign_in(ctx)
    except IdentityProviderUnavailable as exc:
        # The poller retries on its own; a sign-in at the terminal is retried by the person.
        again = "ackmail auth login " + ("--smtp" if ctx.args.smtp else ctx.args.mailbox)
        raise AuthError(exc.subject, exc.cause, "nothing was signed in; check the network "
                        f"path to the authority, then run '{again}' again", code=exc.code,
                        correlation_id=exc.correlation_id) from None
    print(f"{result.subject}: signed in as {result.account} for mailbox "
          f"{_subject(ctx).username}; access token valid until "
          f"{isoformat_z(result.access_token_expires)}; the refresh token is stored encrypted")
    return 0


def _sign_in(ctx: CommandContext) -> SignInResult:
    from ingest.app import token_providers
    from ingest.auth import finish_device_sign_in, sign_in_with_browser, start_device_sign_in

    provider = token_providers(ctx.settings).for_subject(_subject(ctx))
    if not ctx.args.browser:
        prompt = start_device_sign_in(provider)
        print(prompt.message, flush=True)
        return finish_device_sign_in(provider, prompt)
    import webbrowser

    def show(url: str) -> bool:
        print(f"Opening the sign-in page; if no browser opens, visit:\n  {url}", flush=True)
        return webbrowser.open(url)

    return sign_in_with_browser(provider, open_url=show)


def run_status(ctx: CommandContext) -> int:
    from ingest.auth import auth_status

    settings = ctx.settings
    boxes = [settings.mailbox(ctx.args.mailbox)] if ctx.args.mailbox else list(settings.mailboxes)
    subjects: list[MailboxConfig | SmtpConfig] = [b for b in boxes if b.protocol != "maildir"]
    if settings.smtp is not None and settings.smtp.auth != "none" and not ctx.args.mailbox:
        subjects.append(settings.smtp)
    statuses = [auth_status(s, state_dir=settings.state_dir, cache_key=settings.security.cache_key)
                for s in subjects]
    rows = [_row(s) for s in statuses]
    if ctx.args.format == "json":
        print(to_json(rows))
    else:
        # Sentences, not a JSON list, for people; render wraps them so each remedy reads whole.
        table = [{**row, "warnings": "; ".join(s.warnings) or None}
                 for row, s in zip(rows, statuses, strict=True)]
        print(render(table, STATUS_COLUMNS, "table") if rows else "no mailbox signs in")
    return 0


def _row(status: AuthStatus) -> dict[str, object]:
    return {
        "subject": status.subject, "kind": status.kind.value, "mailbox": status.mailbox,
        "account": status.account,
        "signed_in": status.signed_in, "access_token_expires": status.access_token_expires,
        "last_refresh": status.last_refresh,
        "refresh_token_idle_days": status.refresh_token_idle_days,
        "client_secret_expires": status.client_secret_expires,
        "certificate_expires": status.certificate_expires,
        "warnings": list(status.warnings),
    }
