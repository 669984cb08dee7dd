"""A person's page in the staff admin: masked values, audited viewing, the audited reveal with a
reason, what the person then sees in "who accessed my data", and the search for a person."""

import re

import pytest
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from profiles.gate import Actor, profile_write
from profiles.models import Source
from profiles.services import profile_restrict
from staff.roles import AUDITOR, MARKETER, PRIVACY_OFFICER, SUPPORT_AGENT
from tests.factories import fill
from vault.audit import audit_details_read
from vault.models import AuditEntry

GIVEN = "Wilhelmina"
PHONE = "+31612345678"
CITY = "Oostvoorne"  # a field that does not serve account management (personalization, analytics)
UID = "uid-117733550042"


@pytest.fixture
def person(profile_schema, alice):
    fill(alice, given_name=GIVEN, phone=PHONE, city=CITY, birth_date="1987-03-14")
    SocialAccount.objects.create(user=alice, provider="google", uid=UID)
    return alice


def page_url(person) -> str:
    return reverse("admin:staff_person", args=[person.pk])


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def reveal(client, person, fields, reason="Ticket 4711: the person asked us to confirm their name"):
    return client.post(page_url(person), {"chosen": fields, "reason": reason})


# --- The page -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_page_shows_what_is_held_with_every_value_masked(client, member_of, person):
    client.force_login(member_of(SUPPORT_AGENT))
    answer = client.get(page_url(person))
    assert answer.status_code == 200
    html = answer.content.decode()
    for shown in ("Given name", "Phone", "City", "Identity", "The person, in the portal or app", "Google"):
        assert shown in html
    assert "••••••" in html
    assert "a***@example.com" in html
    for hidden in (GIVEN, PHONE, CITY, "1987-03-14", UID, "alice@example.com"):
        assert hidden not in html
    assert 'name="reason"' in html  # the support agent may reveal


@pytest.mark.django_db
def test_viewing_the_page_is_audited_without_values(client, member_of, person):
    agent = member_of(SUPPORT_AGENT)
    client.force_login(agent)
    client.get(page_url(person))
    (entry,) = entries("staff.person_viewed")
    assert (entry.actor_type, entry.actor_id, entry.fields, entry.details) == ("staff", str(agent.pk), [], None)
    assert entry.subject_pseudonym is not None


@pytest.mark.django_db
@pytest.mark.parametrize("role", [MARKETER, AUDITOR])
def test_without_the_view_permission_the_page_is_403(client, member_of, person, role):
    client.force_login(member_of(role))
    assert client.get(page_url(person)).status_code == 403
    assert reveal(client, person, ["given_name"]).status_code == 403
    assert not entries("staff.person_viewed") and not entries("profile.reveal")


@pytest.mark.django_db
def test_an_unknown_person_is_404(client, member_of, profile_schema):
    client.force_login(member_of(SUPPORT_AGENT))
    assert client.get(reverse("admin:staff_person", args=["6f1c5a52-0000-4000-8000-000000000000"])).status_code == 404


@pytest.mark.django_db
def test_the_user_list_and_page_link_to_the_person_page(client, member_of, person):
    client.force_login(member_of(PRIVACY_OFFICER))
    listing = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert page_url(person) in listing and "Find a person" in listing
    change = client.get(reverse("admin:accounts_user_change", args=[person.pk])).content.decode()
    assert page_url(person) in change and "Open person page" in change


# --- Reveal -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_reveal_shows_the_values_once_and_audits_actor_reason_and_fields(client, member_of, person):
    agent = member_of(SUPPORT_AGENT)
    client.force_login(agent)
    answer = reveal(client, person, ["given_name", "phone"], reason="  Ticket 4711:\n the person asked us  ")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert GIVEN in html and PHONE in html
    assert CITY not in html  # not asked
    assert "no-store" in answer["Cache-Control"]
    assert re.search(r'<script src="/static/staff/reveal\.js[^"]*" defer></script>', html)
    assert 'data-seconds="60"' in html
    assert "<script>" not in html  # no inline script (CSP)
    (entry,) = entries("profile.reveal")
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("staff", str(agent.pk), "account-management")
    assert entry.fields == ["given_name", "phone"]
    assert audit_details_read(entry=entry, subject_id=person.pk) == {"reason": "Ticket 4711: the person asked us"}
    raw = bytes(entry.details)
    for value in (GIVEN.encode(), PHONE.encode(), b"Ticket"):
        assert value not in raw  # the details are ciphertext
    # Nothing of it is kept for later: the next page view shows masks again.
    again = client.get(page_url(person)).content.decode()
    assert GIVEN not in again and PHONE not in again
    assert GIVEN not in str(dict(client.session))


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["Asked by ann@example.org on the phone", "Called from +31 6 1234 5678 today"])
def test_a_reason_holding_an_address_or_a_phone_number_is_a_form_error(client, member_of, person, reason):
    """The reason is kept with the audit entry: no personal data goes in with it."""
    client.force_login(member_of(SUPPORT_AGENT))
    answer = reveal(client, person, ["given_name"], reason=reason)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Write no e-mail address or phone number here" in html and GIVEN not in html
    assert not entries("profile.reveal")


@pytest.mark.django_db
def test_the_reveal_time_is_a_setting(client, member_of, person, settings):
    settings.STAFF_REVEAL_SECONDS = 15
    client.force_login(member_of(SUPPORT_AGENT))
    assert 'data-seconds="15"' in reveal(client, person, ["given_name"]).content.decode()


@pytest.mark.django_db
def test_the_reveal_script_is_served(client, member_of):
    from django.contrib.staticfiles import finders

    path = finders.find("staff/reveal.js")
    assert path is not None
    with open(path, encoding="utf-8") as file:
        script = file.read()
    assert "data-value" in script and "setInterval" in script and "pagehide" in script


@pytest.mark.django_db
def test_without_the_reveal_permission_there_is_no_form_and_a_post_is_403(client, member_of, person):
    from django.contrib.auth.models import Permission

    agent = member_of(SUPPORT_AGENT)
    agent.groups.first().permissions.remove(Permission.objects.get(codename="reveal_personal_data"))
    client.force_login(agent)
    html = client.get(page_url(person)).content.decode()
    assert 'name="reason"' not in html
    assert reveal(client, person, ["given_name"]).status_code == 403
    assert not entries("profile.reveal")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"chosen": ["given_name"], "reason": "short"}, "at least 10 characters"),
        ({"chosen": ["given_name"], "reason": ""}, "This field is required"),
        ({"chosen": ["given_name"], "reason": "x" * 501}, "at most 500 characters"),
        ({"chosen": [], "reason": "Ticket 4711: the person asked"}, "Choose a field"),
        ({"chosen": ["no_such_field"], "reason": "Ticket 4711: the person asked"}, "not one of the available"),
    ],
)
def test_bad_reveal_forms_are_form_errors(client, member_of, person, data, error):
    client.force_login(member_of(SUPPORT_AGENT))
    answer = client.post(page_url(person), data)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert error in html
    assert GIVEN not in html
    assert not entries("profile.reveal")


@pytest.mark.django_db
def test_fields_that_do_not_serve_account_management_are_refused_by_name(client, member_of, person):
    client.force_login(member_of(SUPPORT_AGENT))
    answer = reveal(client, person, ["given_name", "city"])
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Not revealed: City may not be used for account management" in html
    assert GIVEN not in html and CITY not in html
    assert not entries("profile.reveal")


@pytest.mark.django_db
def test_a_restricted_person_is_not_revealed(client, member_of, person):
    profile_restrict(subject_id=person.pk, actor=Actor.person(person.pk))
    client.force_login(member_of(SUPPORT_AGENT))
    answer = reveal(client, person, ["given_name"])
    assert answer.status_code == 200
    assert "Not revealed: The person has restricted the processing" in answer.content.decode()
    assert GIVEN not in answer.content.decode()


@pytest.mark.django_db
def test_the_person_sees_the_reveal_and_the_view_in_who_accessed_my_data(client, member_of, person):
    client.force_login(member_of(SUPPORT_AGENT))
    reveal(client, person, ["given_name", "phone"])
    client.logout()
    client.force_login(person)
    html = client.get(reverse("portal:access-log")).content.decode()
    row = re.search(r"<tr>(?:(?!</tr>).)*Revealed profile values to a staff member(?:(?!</tr>).)*</tr>", html, re.S)
    assert row is not None
    assert "Staff member" in row.group(0)
    assert "Given name, Phone" in row.group(0)
    assert "Ticket" not in html  # the reason stays with the data protection officer
    assert "Opened your record in the staff admin" not in html  # the reveal alone, no view entry


@pytest.mark.django_db
def test_the_person_sees_that_staff_opened_their_page(client, member_of, person):
    client.force_login(member_of(SUPPORT_AGENT))
    client.get(page_url(person))
    client.logout()
    client.force_login(person)
    html = client.get(reverse("portal:access-log")).content.decode()
    assert "Opened your record in the staff admin (values hidden)" in html


# --- Find a person ------------------------------------------------------------------------------
FIND = "admin:staff_person_find"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["alice@example.com", " ALICE@example.com ", "w.q@example.net", PHONE, "06 12345678"])
def test_find_a_person_by_exact_address_or_number(client, member_of, person, settings, query):
    settings.VAULT_PHONE_REGION = "NL"
    profile_write(
        subject_id=person.pk,
        values={"email": "w.q@example.net"},
        source=Source.SELF_SERVICE,
        purpose="data-subject-rights",
        actor=Actor.person(person.pk),
    )
    agent = member_of(SUPPORT_AGENT)
    client.force_login(agent)
    answer = client.post(reverse(FIND), {"query": query})
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "1 found" in html and page_url(person) in html and "a***@example.com" in html
    assert query.strip() not in html and "alice@example.com" not in html  # not echoed back
    (search,) = entries("staff.person_search")
    assert search.actor_id == str(agent.pk) and search.subject_pseudonym is None and search.details is None
    assert search.fields in (["login_email", "email"], ["phone"])


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["alice", "example.com", "nobody@example.com", "12"])
def test_find_a_person_takes_no_fragments(client, member_of, person, query):
    client.force_login(member_of(SUPPORT_AGENT))
    html = client.post(reverse(FIND), {"query": query}).content.decode()
    assert page_url(person) not in html


@pytest.mark.django_db
def test_find_a_person_needs_the_view_permission(client, member_of, person):
    client.force_login(member_of(MARKETER))
    assert client.get(reverse(FIND)).status_code == 403
    assert client.post(reverse(FIND), {"query": "alice@example.com"}).status_code == 403


@pytest.mark.django_db
def test_find_a_person_is_on_the_index(client, member_of):
    client.force_login(member_of(SUPPORT_AGENT))
    assert reverse(FIND) in client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_however_much_is_held(client, member_of, profile_schema, alice, bob):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fill(alice, given_name=GIVEN)
    fill(bob, given_name=GIVEN, phone=PHONE, city=CITY, birth_date="1987-03-14", country="NL")
    for provider in ("google", "github"):
        SocialAccount.objects.create(user=bob, provider=provider, uid=f"{provider}-{UID}")
    client.force_login(member_of(SUPPORT_AGENT))
    client.get(page_url(alice))  # warm: pseudonyms, sessions
    client.get(page_url(bob))
    counts = []
    for person in (alice, bob):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page_url(person)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 20, counts  # 17 on SQLite: session, permissions, seven reads, the audit append
