"""What a choice records about how it was collected, reduced before it is stored (DESIGN.md
invariant 1): a keyed hash of the IP address, the browser's family, the jurisdiction. The user
agent reduction is also the one accounts uses for the device list of its sessions, so the two
cannot disagree about what a browser is."""

import ipaddress
import re
from dataclasses import dataclass

from ua_parser import parse_os, parse_user_agent

from consent.errors import InvalidEvidence, InvalidJurisdiction
from vault.blind_index import BlindIndex

# 128 bits: distinct addresses never collide, so the hash can confirm "this address" to someone
# holding the index key. It cannot hide an IPv4 address from that key holder (2^32 guesses);
# it keeps the address out of the database, dumps and backups.
EVIDENCE_IP_INDEX = BlindIndex("consent.evidence.ip", kind="text", bits=128)

# The browser families kept, in ua-parser's names; its mobile, headless and embedded variants
# fold into them ("Chrome Mobile iOS" is Chrome, "Mobile Safari" is Safari). A short fixed list:
# enough to describe how consent was collected, too coarse to single anyone out.
BROWSER_FAMILIES = ("Chrome", "Chromium", "Edge", "Firefox", "Opera", "Safari", "Samsung Internet")
# ua-parser's system families, by the name kept; Linux distributions count as Linux.
_SYSTEMS = {
    "Android": "Android",
    "iOS": "iOS",
    "Chrome OS": "ChromeOS",
    "Windows": "Windows",
    "Mac OS X": "macOS",
    "Mac OS": "macOS",
    **dict.fromkeys(
        (
            "Linux",
            "Ubuntu",
            "Kubuntu",
            "Lubuntu",
            "Linux Mint",
            "Debian",
            "Fedora",
            "Red Hat",
            "CentOS",
            "Arch Linux",
            "Gentoo",
            "openSUSE",
            "SUSE",
            "Slackware",
            "Mageia",
        ),
        "Linux",
    ),
}
SYSTEM_FAMILIES = tuple(dict.fromkeys(_SYSTEMS.values()))
UNKNOWN_DEVICE = "Unknown device"
# Every `UserAgentSummary.device`: what a session row may hold instead of its user agent.
DEVICE_LABELS = frozenset(
    {UNKNOWN_DEVICE, *BROWSER_FAMILIES, *SYSTEM_FAMILIES}
    | {f"{browser} on {system}" for browser in BROWSER_FAMILIES for system in SYSTEM_FAMILIES}
)
_JURISDICTION = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$")


@dataclass(frozen=True)
class Evidence:
    """How the request carrying a choice looked. Only a keyed hash of the address and the
    browser's family are stored, never the values themselves."""

    ip_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class UserAgentSummary:
    """A user agent reduced to browser and system families, without versions or devices; ""
    where it names none of the families kept."""

    browser: str
    system: str

    @property
    def family(self) -> str:
        """What a consent event stores: the browser family, or "other"."""
        return self.browser or "other"

    @property
    def device(self) -> str:
        """What a session row stores: "Firefox on Android", a family alone, or "Unknown device"."""
        if self.browser and self.system:
            return f"{self.browser} on {self.system}"
        return self.browser or self.system or UNKNOWN_DEVICE


def user_agent_summary(user_agent: str) -> UserAgentSummary:
    """The families of a User-Agent header, as ua-parser reads them (only the first 512
    characters: a browser's header is far shorter, and a longer one is not worth parsing)."""
    head = user_agent[:512]
    agent, system = parse_user_agent(head), parse_os(head)
    return UserAgentSummary(
        browser=_browser_family(agent.family) if agent is not None else "",
        system=_SYSTEMS.get(system.family, "") if system is not None else "",
    )


def _browser_family(family: str) -> str:
    family = family.removeprefix("Headless").removeprefix("Mobile ")
    return next((kept for kept in BROWSER_FAMILIES if family == kept or family.startswith(f"{kept} ")), "")


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
    return ip_hash, user_agent_summary(evidence.user_agent).family if evidence.user_agent else ""


def jurisdiction_clean(code: str) -> str:
    """The jurisdiction a choice records: an ISO 3166 code such as DE or US-CA, or ""."""
    code = code.strip().upper()
    if code and not _JURISDICTION.match(code):
        raise InvalidJurisdiction()
    return code
