"""Double opt-in, the age gate and parental consent: e-mailed, signed, expiring links."""

import re

import pytest
from django.core import mail
from django.core.signing import TimestampSigner
from django.utils import timezone

from consent.models import ConsentEvent, Method, Purpose
from consent.selectors import consent_is_granted, consent_states
from tests.factories import UserFactory, give_birth_date

pytestmark = pytest.mark.django_db

PATH = re.compile(r"http://127\.0\.0\.1:8000(/consent/(?:confirm|parental)/[^/\s]+/)")


def post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def link_in_last_mail() -> str:
    found = PATH.search(str(mail.outbox[-1].body))
    assert found, "the mail carries a confirmation link"
    return found.group(1)


def state(subject_id, purpose):
    return next(item.state for item in consent_states(subject_id=subject_id) if item.purpose == purpose)


def test_double_opt_in_grants_only_after_the_emailed_link_is_confirmed(client, alice):
    client.force_login(alice)
    assert (
        post(client, "/api/v1/consent/email-marketing/grant/").json()["errors"][0]["code"] == "double_opt_in_required"
    )
    assert post(client, "/api/v1/consent/email-marketing/request/").status_code == 201
    assert state(alice.id, "email-marketing") == "pending"
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing")
    assert mail.outbox[-1].to == ["alice@example.com"]

    path = link_in_last_mail()
    client.logout()  # the link works from any device, signed in or not
    page = client.get(path)
    assert page.status_code == 200
    assert b"Yes, I confirm" in page.content
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing"), "opening the link is not consent"
    assert client.post(path).status_code == 200
    assert consent_is_granted(subject_id=alice.id, purpose="email-marketing")
    assert client.post(path).status_code == 200, "following it twice is harmless"
    grants = ConsentEvent.objects.filter(subject_id=alice.id, event_type="grant")
    assert [(e.purpose.slug, e.method) for e in grants] == [("email-marketing", Method.DOUBLE_OPT_IN)]


def test_a_new_request_voids_the_old_link_and_expired_links_say_so(client, alice, settings):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    first = link_in_last_mail()
    post(client, "/api/v1/consent/email-marketing/request/")  # "send it again"
    second = link_in_last_mail()
    assert client.post(first).status_code == 400
    assert b"cannot be used" in client.post(first).content
    settings.CONSENT_LINK_MAX_AGE_SECONDS = -1
    expired = client.post(second)
    assert expired.status_code == 400
    assert b"expired" in expired.content
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing")


def test_forged_and_misused_links_grant_nothing(client, alice):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    path = link_in_last_mail()
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = TimestampSigner(salt="consent.double-opt-in", key="not-our-secret-key-" * 3).sign_object("x")
    assert client.post(f"/consent/confirm/{forged}/").status_code == 400
    assert client.post(f"/consent/confirm/{token[:-2]}xx/").status_code == 400
    assert client.post(f"/consent/parental/{token}/").status_code == 400, "a link is good for its own use only"
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing")
    assert not ConsentEvent.objects.filter(event_type="grant").exists()


def test_below_the_age_of_digital_consent_a_parent_must_consent(client, profile_schema):
    # Someone whose profile holds no birth date: the one sent is used for the decision only.
    alice = UserFactory(email="alice@example.com")
    client.force_login(alice)
    child = {"birth_date": "2015-06-01"}
    refused = post(client, "/api/v1/consent/analytics/grant/", child)
    assert refused.status_code == 403
    assert refused.json()["errors"][0] == {
        "code": "parental_consent_required",
        "message": refused.json()["errors"][0]["message"],
        "param": "purpose",
    }
    assert not ConsentEvent.objects.exists()
    assert post(client, "/api/v1/consent/analytics/grant/", {"birth_date": "1990-06-01"}).status_code == 201

    parent = {"parent_email": "parent@example.net", "birth_date": "2015-06-01"}
    adult = {"parent_email": "parent@example.net", "birth_date": "1990-06-01"}
    own = {"parent_email": "alice@example.com", "birth_date": "2015-06-01"}
    assert post(client, "/api/v1/consent/personalization/parental-request/", adult).status_code == 400
    assert post(client, "/api/v1/consent/personalization/parental-request/", own).status_code == 400
    no_doi = post(client, "/api/v1/consent/email-marketing/parental-request/", parent)
    assert no_doi.json()["errors"][0]["code"] == "double_opt_in_required", "a parent cannot prove the account address"
    asked = post(client, "/api/v1/consent/personalization/parental-request/", parent)
    assert asked.status_code == 201
    assert mail.outbox[-1].to == ["parent@example.net"]
    assert "parent@example.net" not in dump_everything(), "the parent's address is kept nowhere"
    path = link_in_last_mail()
    client.logout()
    assert b"on behalf of your child" in client.get(path).content
    assert client.post(path).status_code == 200
    assert consent_is_granted(subject_id=alice.id, purpose="personalization")
    event = ConsentEvent.objects.filter(subject_id=alice.id, purpose__slug="personalization").latest("seq")
    assert event.method == Method.PARENTAL_CONSENT


def dump_everything() -> str:
    """Every row of every table, as text: where a stored value would show up."""
    from django.apps import apps

    return repr([list(model._default_manager.values()) for model in apps.get_models() if model._meta.managed])


def test_a_receipt_is_for_choices_not_for_requests(client, alice):
    client.force_login(alice)
    event_id = post(client, "/api/v1/consent/email-marketing/request/").json()["id"]
    assert client.get(f"/api/v1/consent/receipts/{event_id}/").status_code == 404
    client.post(link_in_last_mail())
    grant_event = ConsentEvent.objects.get(subject_id=alice.id, event_type="grant")
    assert client.get(f"/api/v1/consent/receipts/{grant_event.id}/").status_code == 200


def test_a_withdrawal_after_the_request_voids_the_link(client, alice):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    path = link_in_last_mail()
    post(client, "/api/v1/consent/email-marketing/withdraw/")
    assert client.post(path).status_code == 400
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing")


def test_when_the_mail_cannot_be_sent_nothing_stays_pending(client, alice, monkeypatch):
    import smtplib

    def refuse(*args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"no")})

    monkeypatch.setattr("consent.services.links.send_mail", refuse)
    client.force_login(alice)
    response = post(client, "/api/v1/consent/email-marketing/request/")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "mail_not_sent"
    assert "alice@example.com" not in response.content.decode()
    assert not ConsentEvent.objects.exists()


def test_the_age_threshold_follows_the_country(settings):
    from consent.models import Purpose
    from consent.services import digital_consent_age

    analytics = Purpose.objects.get(slug="analytics")
    analytics.min_age = None
    assert digital_consent_age(analytics, "BE") == 13
    assert digital_consent_age(analytics, "DE") == 16
    assert digital_consent_age(analytics, "US-CA") == 13
    assert digital_consent_age(analytics, "ZZ") == settings.VAULT_DIGITAL_CONSENT_AGES["default"]
    analytics.min_age = 18
    assert digital_consent_age(analytics, "BE") == 18, "a purpose may ask for more"


def test_unconfirmed_requests_expire(client, alice, settings):
    from datetime import timedelta

    from django.utils import timezone

    from consent.tasks import expire_requests

    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    assert expire_requests() == 0, "still within the link's lifetime"
    settings.CONSENT_LINK_MAX_AGE_SECONDS = 300
    from consent.services import consent_requests_expire

    assert consent_requests_expire(now=timezone.now() + timedelta(seconds=301)) == 1
    assert state(alice.id, "email-marketing") == "expired"
    assert consent_requests_expire(now=timezone.now() + timedelta(seconds=301)) == 0, "idempotent"
    assert ConsentEvent.objects.filter(subject_id=alice.id).latest("seq").event_type == "expire"


def test_mail_sending_endpoints_are_throttled(client, alice, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**SimpleRateThrottle.THROTTLE_RATES, "consent_mail": "2/hour"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)  # read once, at import
    cache.clear()
    client.force_login(alice)
    try:
        codes = [post(client, "/api/v1/consent/email-marketing/request/").status_code for _ in range(3)]
    finally:
        cache.clear()
    assert codes == [201, 201, 429]


def test_the_age_gate_reads_the_birth_date_and_country_from_the_profile(client, bob):
    """The age gate cannot be skipped by leaving the birth date out of the request."""
    carol = UserFactory(email="carol@example.com")
    client.force_login(carol)
    unknown = post(client, "/api/v1/consent/analytics/grant/")
    assert (unknown.status_code, unknown.json()["errors"][0]["code"]) == (400, "age_unknown")
    assert unknown.json()["errors"][0]["param"] == "birth_date"

    give_birth_date(carol, f"{timezone.now().year - 14}-01-01")  # 14: a child in Germany, not in Belgium
    assert post(client, "/api/v1/consent/analytics/grant/").json()["errors"][0]["code"] == "parental_consent_required"
    from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write

    profile_write(
        subject_id=carol.pk,
        values={"country": "BE"},
        source="self_service",
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(carol.pk),
    )
    Purpose.objects.filter(slug="analytics").update(min_age=None)
    granted = post(client, "/api/v1/consent/analytics/grant/")
    assert granted.status_code == 201, granted.json()
    assert ConsentEvent.objects.get(subject_id=carol.pk).jurisdiction == "BE"

    client.force_login(bob)  # an adult by the fixture's profile
    assert post(client, "/api/v1/consent/analytics/grant/").status_code == 201


def test_a_person_who_restricted_processing_can_still_make_choices(client, alice):
    from profiles.gate import Actor
    from profiles.services import profile_restrict

    profile_restrict(subject_id=alice.pk, actor=Actor.person(alice.pk))
    client.force_login(alice)
    assert post(client, "/api/v1/consent/analytics/grant/").status_code == 201
    assert post(client, "/api/v1/consent/analytics/withdraw/").status_code == 201


def test_a_link_replayed_after_a_withdrawal_says_so_and_records_nothing(client, alice):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    path = link_in_last_mail()
    assert client.post(path).status_code == 200
    assert post(client, "/api/v1/consent/email-marketing/withdraw/").status_code == 201
    events = ConsentEvent.objects.count()
    withdrawn_on = timezone.localtime(ConsentEvent.objects.latest("occurred_at").occurred_at).strftime("%-d %B %Y")

    client.logout()
    for replay in (client.get(path), client.post(path)):
        page = replay.content.decode()
        assert replay.status_code == 409
        assert "Thank you" not in page and "is recorded" not in page
        assert "already used" in page
        assert f"current choice for <strong>E-mail marketing</strong> is: withdrawn on {withdrawn_on}" in page
        assert "Yes, I confirm" not in page
    assert ConsentEvent.objects.count() == events, "no grant"
    assert not consent_is_granted(subject_id=alice.id, purpose="email-marketing")

    from consent.errors import LinkUsed
    from consent.services import consent_link_confirm

    token = path.rstrip("/").rsplit("/", 1)[1]
    with pytest.raises(LinkUsed):
        consent_link_confirm(token=token, method=Method.DOUBLE_OPT_IN)


def test_a_parental_link_replayed_after_a_withdrawal_says_so_and_records_nothing(client, profile_schema):
    child = give_birth_date(UserFactory(email="child@example.com"), "2015-06-01")
    client.force_login(child)
    asked = post(client, "/api/v1/consent/personalization/parental-request/", {"parent_email": "parent@example.net"})
    assert asked.status_code == 201
    path = link_in_last_mail()
    parent = type(client)()
    assert b"Thank you" in parent.post(path).content
    assert post(client, "/api/v1/consent/personalization/withdraw/").status_code == 201

    replay = parent.post(path)
    assert replay.status_code == 409
    assert b"already used" in replay.content and b"withdrawn on" in replay.content
    assert b"Thank you" not in replay.content
    assert not consent_is_granted(subject_id=child.id, purpose="personalization")
    grants = ConsentEvent.objects.filter(subject_id=child.id, event_type="grant")
    assert grants.count() == 1


def test_a_link_whose_grant_stands_says_it_is_already_confirmed(client, alice, settings):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    path = link_in_last_mail()
    assert b"Thank you" in client.post(path).content
    for again in (client.post(path), client.get(path)):
        assert again.status_code == 200
        assert b"Already confirmed" in again.content
        assert b"Yes, I confirm" not in again.content
    settings.CONSENT_LINK_MAX_AGE_SECONDS = -1
    expired = client.get(path)
    assert b"Already confirmed" in expired.content, "what it did is still true once the link is old"
    assert ConsentEvent.objects.filter(subject_id=alice.id, event_type="grant").count() == 1


def test_a_link_replaced_before_it_was_used_says_what_the_choice_is_now(client, alice):
    client.force_login(alice)
    post(client, "/api/v1/consent/email-marketing/request/")
    path = link_in_last_mail()
    post(client, "/api/v1/consent/email-marketing/withdraw/")
    opened = client.get(path)
    assert opened.status_code == 400
    assert b"Yes, I confirm" not in opened.content, "no button that cannot work"
    assert b"replaced" in opened.content and b"is: withdrawn on" in opened.content


UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


def mail_text(message) -> str:
    """What the recipient reads: the subject and the body without the link (whose token is
    opaque and checked on its own in the tests above)."""
    return f"{message.subject}\n{PATH.sub('<link>', str(message.body))}"


def test_the_mails_speak_in_words_without_ids_or_personal_data(client, profile_schema):
    child = give_birth_date(UserFactory(email="child@example.com"), "2015-06-01")
    client.force_login(child)
    post(client, "/api/v1/consent/personalization/parental-request/", {"parent_email": "parent@example.net"})
    parental = mail_text(mail.outbox[-1])
    assert "Someone who gave this address as their parent's or guardian's" in parental
    assert "Your child" not in parental, "the mail does not claim who the sender is to the parent"
    adult = give_birth_date(UserFactory(email="adult@example.com"))
    client.force_login(adult)
    post(client, "/api/v1/consent/email-marketing/request/")
    double_opt_in = mail_text(mail.outbox[-1])
    assert "E-mail marketing" in double_opt_in

    for text, person in ((parental, child), (double_opt_in, adult)):
        assert not UUID.search(text), "no internal id"
        assert str(person.pk) not in text and person.pk.hex not in text
        assert "child@example.com" not in text and "2015" not in text, "nothing about the person"
