"""Consent receipts: the person's own proof of what they agreed to, or withdrew, and when.

A receipt is derived from one ledger event (nothing more is stored), follows the Kantara
Initiative Consent Receipt Specification v1.1, and is handed out as a compact JWS signed with the
vault's receipt key, which anyone can check against /.well-known/jwks.json.
"""

from typing import Any

from django.conf import settings
from django.urls import reverse

from consent.models import ConsentEvent, EventType, LegalBasis
from vault.signing import jws_sign

KANTARA_VERSION = "KI-CR-v1.1.0"

_CONSENT_TYPE = {
    EventType.GRANT: "EXPLICIT",
    EventType.RENEW: "EXPLICIT",
    EventType.WITHDRAW: "WITHDRAWN",
    EventType.REFUSE: "REFUSED",
    EventType.EXPIRE: "EXPIRED",
}
# A request (awaiting confirmation) is not yet a choice: its receipt comes with the grant.
RECEIPT_EVENTS = frozenset(_CONSENT_TYPE)


def consent_receipt(event: ConsentEvent) -> dict[str, Any]:
    """The Kantara v1.1 receipt of one ledger event, plus the event and policy hash it rests on.
    The person is named by their opaque subject id only."""
    purpose, version = event.purpose, event.policy_version
    controller = settings.VAULT_CONTROLLER
    portal = settings.VAULT_SITE_URL + reverse("portal:home")
    policy_url = settings.VAULT_SITE_URL + reverse(
        "consent-policy", kwargs={"purpose": purpose.slug, "label": version.label}
    )
    purpose_entry: dict[str, Any] = {
        "purpose": purpose.name,
        "consentType": _CONSENT_TYPE[EventType(event.event_type)],
        "purposeCategory": [purpose.dpv_term, purpose.data_use],
        "piiCategory": list(purpose.data_categories),
        "primaryPurpose": purpose.legal_basis == LegalBasis.CONTRACT,
        "termination": f"Until you withdraw it, at any time: {portal}",
        "thirdPartyDisclosure": purpose.is_sale_or_sharing,
    }
    if purpose.is_sale_or_sharing:
        purpose_entry["thirdPartyName"] = "Advertising partners named in the policy"
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": event.jurisdiction or controller["jurisdiction"],
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": event.get_method_display(),
        "consentReceiptID": str(event.id),
        "language": "en",
        "piiPrincipalId": str(event.subject_id),
        "piiControllers": [
            {
                "piiController": controller["name"],
                "onBehalf": False,
                "contact": controller["contact"],
                "address": {"postal": controller["address"]},
                "email": controller["email"],
                "phone": controller["phone"],
                "piiControllerUrl": controller["url"],
            }
        ],
        "policyUrl": policy_url,
        "services": [{"service": controller["name"], "purposes": [purpose_entry]}],
        "sensitive": False,
        "spiCat": [],
        # Beyond Kantara: what exactly happened, and the hash of the exact text agreed to.
        "event": event.event_type,
        "policyVersion": version.label,
        "policySha256": version.sha256,
    }


def consent_receipt_jws(event: ConsentEvent) -> str:
    return jws_sign(consent_receipt(event), content_type="consent-receipt+json")
