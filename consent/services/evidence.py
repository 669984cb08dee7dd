"""What a choice records about how it was collected, reduced before it is stored (DESIGN.md
invariant 1): a keyed hash of the IP address, the browser's family, the jurisdiction."""

import ipaddress
import re
from dataclasses import dataclass

from consent.errors import InvalidEvidence, InvalidJurisdiction
from vault.blind_index import BlindIndex

# 128 bits: distinct addresses never collide, so the hash can confirm "this address" to someone
# holding the index key. It cannot hide an IPv4 address from that key holder (2^32 guesses);
# it keeps the address out of the database, dumps and backups.
EVIDENCE_IP_INDEX = BlindIndex("consent.evidence.ip", kind="text", bits=128)

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
_UA_FAMILIES = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)\b")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
_JURISDICTION = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$")


@dataclass(frozen=True)
class Evidence:
    """How the request carrying a choice looked. Only a keyed hash of the address and the
    browser's family are stored, never the values themselves."""

    ip_address: str = ""
    user_agent: str = ""


def user_agent_family(user_agent: str) -> str:
    """ "Chrome", "Firefox", "Safari", "Edge", "Opera" or "other": enough to describe how consent
    was collected, too coarse to fingerprint anyone."""
    head = user_agent[:512]
    return next((family for family, pattern in _UA_FAMILIES if pattern.search(head)), "other")


def evidence_columns(evidence: Evidence | None) -> tuple[str, str]:
    """The (IP hash, browser family) a choice stores; raises `InvalidEvidence` for an address
    that is not one."""
    if evidence is None:
        return "", ""
    ip_hash = ""
    if evidence.ip_address:
        try:
            address = ipaddress.ip_address(evidence.ip_address.strip())
        except ValueError:
            raise InvalidEvidence("The IP address is not well-formed.") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # one address, one hash, however the proxy wrote it
        ip_hash = EVIDENCE_IP_INDEX.compute(address.compressed)
    return ip_hash, user_agent_family(evidence.user_agent) if evidence.user_agent else ""


def jurisdiction_clean(code: str) -> str:
    """The jurisdiction a choice records: an ISO 3166 code such as DE or US-CA, or ""."""
    code = code.strip().upper()
    if code and not _JURISDICTION.match(code):
        raise InvalidJurisdiction()
    return code
