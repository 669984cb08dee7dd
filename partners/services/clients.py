"""Writes of the partners app: clients, their credentials and webhook secrets, and the pairwise
ids clients see people under. Every change to a client is audited (no personal data in it)."""

import ipaddress
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from django.db import transaction

from consent.models import Purpose
from partners.errors import InvalidClient
from partners.models import PairwiseId, PartnerClient, PartnerCredential
from partners.secrets import webhook_secret_new, webhook_secret_seal
from profiles.gate import Actor
from profiles.selectors import unscoped_field_definitions
from vault.audit import audit_record
from vault.pairwise import pairwise_id

_RATE = re.compile(r"^\d{1,6}/(s|sec|m|min|h|hour)$")
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
CLIENT_ATTRS = ("name", "purposes", "fields", "record_kinds", "rate_limit", "ip_allowlist", "webhook_url", "is_active")


def partner_client_check(client: PartnerClient) -> None:
    """Raise `InvalidClient` naming the attribute that is wrong (the admin form shows it on its
    field before anything is saved; the services check again)."""
    _check(client)


def _check(client: PartnerClient) -> None:
    """Raise `InvalidClient` naming the attribute that is wrong."""
    if not _SLUG.match(client.slug):
        raise InvalidClient("Lower-case letters, digits and -, starting with a letter.", param="slug")
    known_purposes = set(Purpose.objects.filter(slug__in=client.purposes).values_list("slug", flat=True))
    if unknown := sorted(set(client.purposes) - known_purposes):
        raise InvalidClient(f"Unknown purpose: {unknown[0]}.", param="purposes")
    known_fields = set(unscoped_field_definitions().filter(key__in=client.fields).values_list("key", flat=True))
    if unknown := sorted(set(client.fields) - known_fields):
        raise InvalidClient(f"Unknown profile field: {unknown[0]}.", param="fields")
    if not _RATE.match(client.rate_limit):
        raise InvalidClient("A rate is a number per s, min or hour: 600/min.", param="rate_limit")
    for cidr in client.ip_allowlist:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise InvalidClient("Not an IP address or CIDR range.", param="ip_allowlist") from None


def _audit(client: PartnerClient, action: str, actor: Actor, fields: Iterable[str] = ()) -> None:
    """One entry naming the client (by slug) and what changed (attribute names, never values)."""
    client_name = "client." + client.slug.replace("-", "_")
    audit_record(**actor.audit(), action=action, fields=[client_name, *fields])


def partner_client_create(*, slug: str, name: str, actor: Actor, **attrs: Any) -> PartnerClient:
    """A new client (no credential yet: `partner_credential_create` makes one)."""
    unknown = set(attrs) - set(CLIENT_ATTRS)
    if unknown:
        raise InvalidClient("Not an attribute of a client.", param=sorted(unknown)[0])
    client = PartnerClient(slug=slug, name=name, **attrs)
    _check(client)
    with transaction.atomic():
        if PartnerClient.objects.filter(slug=slug).exists():
            raise InvalidClient("A client with this slug exists.", param="slug")
        client.save()
        _audit(client, "partners.client_create", actor, sorted(attrs))
    return client


def partner_client_update(*, client: PartnerClient, actor: Actor, **attrs: Any) -> PartnerClient:
    unknown = set(attrs) - set(CLIENT_ATTRS)
    if unknown:
        raise InvalidClient("Not an attribute of a client.", param=sorted(unknown)[0])
    for name, value in attrs.items():
        setattr(client, name, value)
    _check(client)
    with transaction.atomic():
        client.save()
        _audit(client, "partners.client_update", actor, sorted(attrs))
    return client


def partner_credential_create(
    *, client: PartnerClient, name: str, actor: Actor, expires_at: datetime | None = None
) -> tuple[PartnerCredential, str]:
    """A new API key for `client`, returned once (only its prefix and hash are kept). Several
    may stand at once, for rotation."""
    with transaction.atomic():
        credential, key = PartnerCredential.objects.create_key(client=client, name=name[:50], expiry_date=expires_at)
        _audit(client, "partners.credential_create", actor, ["credential"])
    return cast(PartnerCredential, credential), key


def partner_credential_revoke(*, credential: PartnerCredential, actor: Actor) -> None:
    """Revoke one key for good (the library refuses to un-revoke)."""
    with transaction.atomic():
        if credential.revoked:
            return
        credential.revoked = True
        credential.save(update_fields=["revoked"])
        _audit(credential.client, "partners.credential_revoke", actor, ["credential"])


def partner_webhook_secret_rotate(*, client: PartnerClient, actor: Actor) -> str:
    """A new webhook signing secret, returned once; deliveries are signed with it from now on."""
    secret = webhook_secret_new()
    with transaction.atomic():
        client.webhook_secret = webhook_secret_seal(secret)
        client.save(update_fields=["webhook_secret", "updated_at"])
        _audit(client, "partners.webhook_secret_rotate", actor, ["webhook_secret"])
    return secret


def pairwise_ids_for(*, client: PartnerClient, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The ids `client` sees these people under, remembered so they can be mapped back. One
    bulk insert for the ones never shown to this client before."""
    subjects = list(dict.fromkeys(subject_ids))
    audience = str(client.pk)
    ids = {subject: pairwise_id(audience=audience, subject_id=subject) for subject in subjects}
    PairwiseId.objects.bulk_create(
        [PairwiseId(client=client, pairwise=ids[subject], subject_id=subject) for subject in subjects],
        ignore_conflicts=True,
        batch_size=5000,
    )
    return ids
