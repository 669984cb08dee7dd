"""Manage partner clients from the command line: create, add or revoke a credential, rotate the
webhook secret, list. Keys and secrets are printed once and never stored in plaintext."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from partners.models import PartnerClient, PartnerCredential
from partners.services import (
    partner_client_create,
    partner_credential_create,
    partner_credential_revoke,
    partner_webhook_secret_rotate,
)
from profiles.gate import Actor
from vault.errors import ApplicationError

ACTOR = Actor.system("cli.partner_clients")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Partner clients: create, credential, revoke, rotate-webhook-secret, list."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="A new client and its first credential (printed once).")
        create.add_argument("slug")
        create.add_argument("--name", required=True)
        create.add_argument("--purposes", default="", help="Comma-separated purpose slugs.")
        create.add_argument("--fields", default="", help="Comma-separated profile field keys.")
        create.add_argument("--record-kinds", default="", help="Comma-separated event kinds it may post.")
        create.add_argument("--rate-limit", default="600/min")
        create.add_argument("--ip-allowlist", default="", help="Comma-separated CIDR ranges.")
        create.add_argument("--webhook-url", default="")
        credential = sub.add_parser("credential", help="Another credential for a client (rotation).")
        credential.add_argument("slug")
        credential.add_argument("--name", default="rotated")
        revoke = sub.add_parser("revoke", help="Revoke one credential, by its prefix.")
        revoke.add_argument("prefix")
        rotate = sub.add_parser("rotate-webhook-secret", help="A new webhook signing secret (printed once).")
        rotate.add_argument("slug")
        sub.add_parser("list", help="Clients, their purposes and credentials (prefixes only).")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.param}: {exc.message}" if exc.param else exc.message) from exc

    def _client(self, slug: str) -> PartnerClient:
        client = PartnerClient.objects.filter(slug=slug).first()
        if client is None:
            raise CommandError(f"No client {slug!r}.")
        return client

    def _create(self, *, slug: str, name: str, **options: Any) -> None:
        client = partner_client_create(
            slug=slug,
            name=name,
            actor=ACTOR,
            purposes=_list(options["purposes"]),
            fields=_list(options["fields"]),
            record_kinds=_list(options["record_kinds"]),
            rate_limit=options["rate_limit"],
            ip_allowlist=_list(options["ip_allowlist"]),
            webhook_url=options["webhook_url"],
        )
        _, key = partner_credential_create(client=client, name="first", actor=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"Client {slug} created. Its API key (shown once): {key}"))
        if client.webhook_url:
            secret = partner_webhook_secret_rotate(client=client, actor=ACTOR)
            self.stdout.write(f"Webhook signing secret (shown once): {secret}")

    def _credential(self, *, slug: str, name: str, **options: Any) -> None:
        _, key = partner_credential_create(client=self._client(slug), name=name, actor=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"New API key for {slug} (shown once): {key}"))

    def _revoke(self, *, prefix: str, **options: Any) -> None:
        credential = PartnerCredential.objects.filter(prefix=prefix).first()
        if credential is None:
            raise CommandError(f"No credential with prefix {prefix!r}.")
        partner_credential_revoke(credential=credential, actor=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"Credential {prefix} revoked."))

    def _rotate_webhook_secret(self, *, slug: str, **options: Any) -> None:
        secret = partner_webhook_secret_rotate(client=self._client(slug), actor=ACTOR)
        self.stdout.write(self.style.SUCCESS(f"New webhook signing secret for {slug} (shown once): {secret}"))

    def _list(self, **options: Any) -> None:
        for client in PartnerClient.objects.prefetch_related("credentials"):
            keys = [f"{c.prefix}{' (revoked)' if c.revoked else ''}" for c in client.credentials.all()]
            self.stdout.write(
                json.dumps(
                    {"client": client.slug, "active": client.is_active, "purposes": client.purposes, "keys": keys}
                )
            )
