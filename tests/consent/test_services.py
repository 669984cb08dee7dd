"""Recording choices: the ledger event, its projection and its audit entry are written together,
bad input is refused with a typed error and writes nothing, evidence is never stored raw."""

import hashlib
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from consent.errors import ConsentError, InvalidMethod
from consent.models import ConsentEvent, ConsentState, ConsentStatus, EventType, Method, PolicyVersion
from consent.selectors import consent_is_granted
from consent.services import (
    DEVICE_LABELS,
    EVIDENCE_IP_INDEX,
    Evidence,
    consent_grant,
    consent_refuse,
    consent_withdraw,
    policy_version_publish,
    user_agent_summary,
)
from vault.audit import audit_pseudonym_for, audit_verify
from vault.keys import new_key_set, write_key_file
from vault.models import AuditEntry

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
EDGE = CHROME + " Edg/126.0.2592.68"
OPERA = CHROME + " OPR/111.0.0.0"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36"
)
CHROMIUM = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/126.0.0.0 Chrome/126.0.0.0 "
    "Safari/537.36"
)
IP = "203.0.113.77"


def consent_entries():
    """The audit entries of consent changes (the age gate's read of the birth date has its own)."""
    return AuditEntry.objects.filter(action__startswith="consent.")


def grant(subject, purpose="newsletter", **kwargs):
    kwargs.setdefault("method", Method.WEB_FORM)
    return consent_grant(subject_id=subject.id, purpose=purpose, **kwargs)


def test_a_grant_is_one_event_its_projection_and_its_audit_entry(alice, newsletter):
    event = grant(alice, jurisdiction="de")

    version = newsletter.versions.get()
    assert (event.event_type, event.seq, event.policy_version, event.method) == ("grant", 1, version, "web_form")
    assert event.policy_version.sha256 == hashlib.sha256(b"The newsletter policy.\n").hexdigest()
    assert event.jurisdiction == "DE"
    assert event.actor_type == "person"
    state = ConsentState.objects.get(subject_id=alice.id, purpose=newsletter)
    assert (state.status, state.policy_version, state.last_seq, state.changed_at) == (
        "granted",
        version,
        1,
        event.occurred_at,
    )
    entry = consent_entries().get()
    assert (entry.action, entry.purpose, entry.actor_type) == ("consent.grant", "newsletter", "person")
    # The person acting is named by their audit pseudonym, never their id.
    assert entry.actor_id == str(audit_pseudonym_for(alice.id)) != str(alice.id)
    assert entry.subject_pseudonym == audit_pseudonym_for(alice.id)
    assert audit_verify().ok


def test_each_choice_moves_the_projection_and_the_ledger_keeps_them_all(alice, bob, newsletter):
    grant(alice)
    assert consent_is_granted(subject_id=alice.id, purpose="newsletter")
    consent_withdraw(subject_id=alice.id, purpose="newsletter", method=Method.WEB_FORM)
    assert not consent_is_granted(subject_id=alice.id, purpose="newsletter")
    consent_refuse(subject_id=alice.id, purpose="newsletter", method=Method.API)
    grant(alice)
    grant(alice)  # granting again while granted renews

    events = ConsentEvent.objects.filter(subject_id=alice.id).order_by("seq")
    assert [(e.seq, e.event_type) for e in events] == [
        (1, "grant"),
        (2, "withdraw"),
        (3, "refuse"),
        (4, "grant"),
        (5, "renew"),
    ]
    assert ConsentState.objects.get(subject_id=alice.id).status == ConsentStatus.GRANTED
    assert list(consent_entries().values_list("action", flat=True)) == [
        "consent.grant",
        "consent.withdraw",
        "consent.refuse",
        "consent.grant",
        "consent.renew",
    ]
    # Bob, who chose nothing, is untouched.
    assert not ConsentState.objects.filter(subject_id=bob.id).exists()
    assert not consent_is_granted(subject_id=bob.id, purpose="newsletter")


def test_withdrawing_is_as_easy_as_granting(alice, newsletter):
    """Same parameters, no extra condition; even a person looking at a superseded text can say no."""
    grant(alice)
    policy_version_publish(purpose="newsletter", label="v2", text="Reworded.")
    event = consent_withdraw(subject_id=alice.id, purpose="newsletter", policy_version="v1", method=Method.WEB_FORM)
    assert event.policy_version.label == "v1"
    assert not consent_is_granted(subject_id=alice.id, purpose="newsletter")


def test_withdrawing_without_a_grant_is_recorded_too(alice, newsletter):
    consent_withdraw(subject_id=alice.id, purpose="newsletter", method=Method.API)
    assert ConsentState.objects.get(subject_id=alice.id).status == ConsentStatus.WITHDRAWN


def test_staff_recording_for_a_person_is_audited_as_staff(alice, staff, newsletter):
    event = grant(alice, method=Method.IMPORT, actor_type="staff", actor_id=str(staff.id))
    assert event.actor_type == "staff"
    entry = consent_entries().get()
    assert (entry.actor_type, entry.actor_id) == ("staff", str(staff.id))
    assert entry.subject_pseudonym == audit_pseudonym_for(alice.id)


def test_gpc_opts_out_of_selling_or_sharing(alice, ad_sharing):
    grant(alice, purpose="ad-sharing")
    event = consent_withdraw(subject_id=alice.id, purpose="ad-sharing", method=Method.GPC, jurisdiction="US-CA")
    assert (event.method, event.jurisdiction) == ("gpc", "US-CA")
    assert not consent_is_granted(subject_id=alice.id, purpose="ad-sharing")


@pytest.mark.parametrize("method", [Method.DOUBLE_OPT_IN, Method.PARENTAL_CONSENT])
def test_confirmation_methods_are_recorded_only_by_following_a_link(alice, double_opt_in, method):
    """(tests/consent/test_links.py follows the links.)"""
    with pytest.raises(InvalidMethod):
        grant(alice, purpose="mailings", method=method)
    assert not ConsentEvent.objects.exists()


def test_a_legitimate_interest_purpose_takes_an_objection(alice, fraud_checks):
    assert consent_is_granted(subject_id=alice.id, purpose="fraud-checks")
    consent_withdraw(subject_id=alice.id, purpose="fraud-checks", method=Method.WEB_FORM)
    assert not consent_is_granted(subject_id=alice.id, purpose="fraud-checks")


# --- Bad input: a clear error, nothing written ---------------------------------------------------


def _future_version():
    policy_version_publish(purpose="newsletter", label="v2", text="Next year's text.", effective_from=_later())


def _superseding_version():
    policy_version_publish(purpose="newsletter", label="v2", text="Today's text.")


def _later():
    return timezone.now() + timedelta(days=30)


BAD_CALLS = [
    pytest.param(None, {"purpose": "no-such-purpose"}, "unknown_purpose", "purpose", id="unknown purpose"),
    pytest.param(None, {"purpose": None}, "unknown_purpose", "purpose", id="purpose not a slug"),
    pytest.param(_future_version, {"policy_version": "v2"}, "policy_not_current", "policy_version", id="unpublished"),
    pytest.param(
        _superseding_version, {"policy_version": "v1"}, "policy_not_current", "policy_version", id="superseded"
    ),
    pytest.param(None, {"policy_version": "v9"}, "unknown_policy_version", "policy_version", id="unknown version"),
    pytest.param(None, {"purpose": "orders"}, "not_consent_based", "purpose", id="contract basis"),
    pytest.param(None, {"purpose": "unpublished"}, "no_current_policy", "purpose", id="no policy yet"),
    pytest.param(None, {"method": "carrier-pigeon"}, "invalid_method", "method", id="unknown method"),
    pytest.param(None, {"method": Method.GPC, "purpose": "ad-sharing"}, "invalid_method", "method", id="gpc grants"),
    pytest.param(None, {"purpose": "mailings"}, "double_opt_in_required", "method", id="no double opt-in"),
    pytest.param(None, {"jurisdiction": "Germany"}, "invalid_jurisdiction", "jurisdiction", id="bad jurisdiction"),
    pytest.param(None, {"evidence": Evidence(ip_address="999.1.1.1")}, "invalid_evidence", "evidence", id="bad ip"),
]


@pytest.fixture
def all_purposes(newsletter, ad_sharing, double_opt_in, orders, make_purpose):
    make_purpose("unpublished", published=False)


@pytest.mark.parametrize(("prepare", "kwargs", "code", "param"), BAD_CALLS)
def test_bad_grants_are_refused_with_a_typed_error_and_leave_no_trace(
    alice, all_purposes, prepare, kwargs, code, param
):
    if prepare:
        prepare()
    with pytest.raises(ConsentError) as raised:
        grant(alice, **kwargs)
    assert (raised.value.code, raised.value.param, raised.value.kind) == (code, param, "invalid")
    assert not ConsentEvent.objects.exists()
    assert not ConsentState.objects.exists()
    assert not consent_entries().exists()


@pytest.mark.parametrize("record", [consent_withdraw, consent_refuse])
def test_withdrawing_a_contract_purpose_or_by_gpc_outside_sales_is_refused(alice, orders, newsletter, record):
    with pytest.raises(ConsentError, match="contract or a legal obligation"):
        record(subject_id=alice.id, purpose="orders", method=Method.WEB_FORM)
    with pytest.raises(ConsentError, match="sell or share"):
        record(subject_id=alice.id, purpose="newsletter", method=Method.GPC)
    assert not ConsentEvent.objects.exists()


def test_a_failure_after_the_event_was_written_rolls_it_back(alice, newsletter):
    """The audit entry is part of the act: when it cannot be written, neither is the event."""
    with pytest.raises(ValueError, match="opaque id"):
        grant(alice, actor_type="staff", actor_id="staff@example.com")
    assert not ConsentEvent.objects.exists()
    assert not ConsentState.objects.exists()


# --- Evidence -----------------------------------------------------------------------------------


def _all_stored_text() -> str:
    """Every value of every consent and audit row, as the database returns them."""
    rows = [
        *ConsentEvent.objects.values_list(),
        *ConsentState.objects.values_list(),
        *AuditEntry.objects.values_list(),
    ]
    return repr(rows)


def test_evidence_is_stored_as_a_keyed_hash_and_a_browser_family_only(alice, newsletter):
    event = grant(alice, evidence=Evidence(ip_address=IP, user_agent=CHROME))

    event.refresh_from_db()
    assert event.ip_hash == EVIDENCE_IP_INDEX.compute(IP)
    assert len(event.ip_hash) == 32  # 128 bits
    assert event.ip_hash != hashlib.sha256(IP.encode()).hexdigest()[:32]  # keyed, not a plain hash
    assert event.ua_family == "Chrome"
    stored = _all_stored_text()
    for raw in (IP, CHROME, "Windows NT", "126.0.0.0", "203.0.113"):
        assert raw not in stored
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ConsentEvent._meta.db_table}")  # noqa: S608
        assert IP not in repr(cursor.fetchall())


def test_one_address_gives_one_hash_however_it_is_written(alice, bob, newsletter):
    first = grant(alice, evidence=Evidence(ip_address="192.0.2.1"))
    second = grant(bob, evidence=Evidence(ip_address=" ::ffff:192.0.2.1 "))
    assert first.ip_hash == second.ip_hash
    other = grant(bob, evidence=Evidence(ip_address="2001:DB8::1"))
    assert other.ip_hash == EVIDENCE_IP_INDEX.compute("2001:db8::1") != first.ip_hash


def test_the_evidence_key_is_the_vault_index_key(alice, newsletter, vault_keys, settings):
    """A different index root key gives a different hash: without the key the hash confirms nothing."""
    event = grant(alice, evidence=Evidence(ip_address=IP))
    other_keys = vault_keys.parent / "other-keys.json"
    write_key_file(other_keys, new_key_set(), overwrite=False)
    settings.VAULT_KEKS_FILE = str(other_keys)
    assert EVIDENCE_IP_INDEX.compute(IP) != event.ip_hash


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        (CHROME, "Chrome"),
        (FIREFOX, "Firefox"),
        (SAFARI, "Safari"),
        (EDGE, "Edge"),
        (OPERA, "Opera"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) CriOS/126.0 Mobile/15E148 Safari/604.1", "Chrome"),
        # The hand-written parsers disagreed on these two: consent said Safari and Chrome.
        (HEADLESS_CHROME, "Chrome"),
        (CHROMIUM, "Chromium"),
        ("curl/8.5.0", "other"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "other"),
        ("", "other"),
    ],
)
def test_user_agent_families(user_agent, family):
    assert user_agent_summary(user_agent).family == family


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (CHROME, "Chrome on Windows"),
        (FIREFOX, "Firefox on Linux"),
        (SAFARI, "Safari on macOS"),
        (HEADLESS_CHROME, "Chrome on Linux"),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 "
            "SamsungBrowser/25.0",
            "Samsung Internet on Android",
        ),
        ("curl/8.5.0", "Unknown device"),
    ],
)
def test_the_device_summary_keeps_families_only(user_agent, device):
    """The same reduction serves the session list (accounts): families, never versions."""
    assert user_agent_summary(user_agent).device == device
    assert device in DEVICE_LABELS


# --- The ledger is append-only ------------------------------------------------------------------


def test_a_recorded_event_cannot_be_changed(alice, newsletter):
    event = grant(alice)
    event.method = Method.API
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            ConsentEvent.objects.filter(pk=event.pk).update(method=Method.API)
    assert ConsentEvent.objects.get().method == "web_form"


# --- Publishing policy versions -----------------------------------------------------------------


def test_a_version_hashes_its_exact_text(newsletter):
    text = "Line one\r\nLine two  \n"
    version = policy_version_publish(purpose="newsletter", label="v2", text=text, is_material=True)
    assert version.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert PolicyVersion.objects.get(pk=version.pk).text == text


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"label": "v1"}, "label"),  # taken
        ({"label": ""}, "label"),
        ({"text": "  "}, "text"),
        ({"effective_from": timezone.now() - timedelta(days=1)}, "effective_from"),  # backdated
        ({"effective_from": timezone.now().replace(tzinfo=None)}, "effective_from"),  # naive
    ],
)
def test_versions_that_cannot_be_published(newsletter, kwargs, param):
    arguments = {"purpose": "newsletter", "label": "v2", "text": "Text."} | kwargs
    with pytest.raises(ConsentError) as raised:
        policy_version_publish(**arguments)
    assert (raised.value.code, raised.value.param) == ("invalid_policy_version", param)
    assert newsletter.versions.count() == 1


def test_versions_take_effect_in_order(newsletter):
    policy_version_publish(purpose="newsletter", label="v3", text="Later.", effective_from=_later())
    with pytest.raises(ConsentError, match="after the latest"):
        policy_version_publish(purpose="newsletter", label="v2", text="Sooner.")
    assert [v.label for v in newsletter.versions.all()] == ["v1", "v3"]


def test_a_version_for_an_unknown_purpose(db):
    with pytest.raises(ConsentError) as raised:
        policy_version_publish(purpose="nope", label="v1", text="Text.")
    assert raised.value.code == "unknown_purpose"


def test_event_types_cover_the_ledger():
    assert set(EventType.values) == {"request", "grant", "renew", "withdraw", "refuse", "expire"}
    assert set(Method.values) == {"web_form", "api", "gpc", "double_opt_in", "import", "parental_consent"}


def test_a_published_text_cannot_be_rewritten_in_the_database(newsletter):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the immutability trigger is PostgreSQL's (set DATABASE_URL=postgres://...)")
    with pytest.raises(DatabaseError), transaction.atomic():
        PolicyVersion.objects.filter(purpose=newsletter).update(text="Something else entirely.")
    assert PolicyVersion.objects.get(purpose=newsletter).text == "The newsletter policy.\n"
