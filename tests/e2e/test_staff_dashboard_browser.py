"""The consent analytics console in a real browser: the privacy officer signs in through the login
form with password and TOTP code, opens the console from the admin's index, and sees its charts
drawn (SVG data marks laid out and visible), with no Content Security Policy violation. A
screenshot is kept as a test artifact."""

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from accounts.models import User
from consent.models import Method
from consent.services import consent_gpc_apply, consent_grant, consent_refuse, consent_withdraw, policy_version_publish
from rights.models import Channel, Kind, RightsRequest, Status
from staff.analytics import week_start
from staff.roles import PRIVACY_OFFICER, roles_install
from tests.e2e.test_portal_pages_browser import artifacts_dir
from tests.factories import PurposeFactory, totp_code

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
START = week_start(timezone.now()) - timedelta(weeks=6)


def moment(weeks: int, hours: float) -> datetime:
    return timezone.make_aware(datetime(START.year, START.month, START.day)) + timedelta(weeks=weeks, hours=hours)


@contextmanager
def at(when: datetime):
    with mock.patch("django.utils.timezone.now", return_value=when):
        yield


@pytest.fixture
def ledger(committed_db, settings):
    """Enough choices over six weeks for every chart to draw with the minimum count at 3."""
    settings.STAFF_ANALYTICS_MIN_COUNT = 3
    with at(moment(0, 1)):
        for slug in ("newsletter", "ad-sharing"):
            PurposeFactory.create(slug=slug, is_sale_or_sharing=slug == "ad-sharing", published=False)
            policy_version_publish(purpose=slug, label="v1", text=f"The {slug} policy.\n", effective_from=moment(0, 1))
    with at(moment(3, 1)):
        policy_version_publish(purpose="newsletter", label="v2", text="Changed.\n", effective_from=moment(3, 1))
    people = [uuid.uuid4() for _ in range(12)]
    for i, person in enumerate(people):
        with at(moment(i % 5, 2 + i)):
            consent_grant(subject_id=person, purpose="newsletter", method=Method.WEB_FORM, age=30)
        if i % 3 == 0:
            with at(moment(i % 5 + 1, 3 + i)):
                consent_withdraw(subject_id=person, purpose="newsletter", method=Method.WEB_FORM)
        if i < 8:
            with at(moment(i % 2 + 1, 5 + i)):
                consent_refuse(subject_id=person, purpose="ad-sharing", method=Method.WEB_FORM)
        else:
            with at(moment(2, 5 + i)):
                consent_gpc_apply(subject_id=person)
    for i, days in enumerate((1, 3, 4, 8, 12)):
        RightsRequest.objects.create(
            subject_id=uuid.uuid4(),
            kind=(Kind.ACCESS, Kind.ERASURE)[i % 2] if i < 4 else Kind.ACCESS,
            channel=Channel.PORTAL,
            received_at=moment(1, i),
            due_at=moment(1, i) + timedelta(days=30),
            status=Status.COMPLETED,
            completed_at=moment(1, i) + timedelta(days=days),
        )


@pytest.fixture
def officer(committed_db, staff_mfa):
    """A privacy officer with a TOTP authenticator whose secret the test knows."""
    staff_mfa.auto = False  # the real sign-in with the code records the MFA, not the suite's hook
    user = User.objects.create_user("officer@staff.example", PASSWORD, is_staff=True)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    # The roles again: a transactional test before this one may have flushed the data migration's.
    roles_install(apps, SimpleNamespace(connection=connection))
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def test_the_privacy_officer_signs_in_with_totp_and_sees_the_charts(page, live_server, ledger, officer):
    user, secret = officer
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    failed: list[str] = []  # the admin links no favicon: the browser's guess at one is no fault
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)

    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.fill("input[name=code]", totp_code(secret, margin=6.0))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/admin/")

    page.click("#consoles >> text=Consent analytics")
    page.wait_for_url(f"{live_server.url}/admin/consent-analytics/")
    assert page.locator("h1").first.inner_text() == "Consent analytics"
    assert page.locator("svg.chart").count() == 6  # two per purpose someone chose about, GPC, rights
    seeded = ["optin-newsletter", "activity-newsletter", "activity-ad-sharing", "gpc", "rights"]
    for slug in seeded:
        chart = page.locator(f"svg#chart-{slug}")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100
        assert chart.locator(f"title#chart-{slug}-title").count() == 1
        assert chart.locator(f"desc#chart-{slug}-desc").count() == 1
        marks = chart.locator(".mark")
        sized = [marks.nth(j).bounding_box() for j in range(marks.count())]
        drawn = [b for b in sized if b and b["width"] > 0 and b["height"] > 0]
        assert drawn, f"{slug}: no data mark is drawn"
        assert marks.first.is_visible()
    assert page.locator("#chart-optin-newsletter .marker").count() >= 1  # v2 drawn across the time chart

    path = artifacts_dir() / "staff-consent-analytics-desktop.png"
    page.screenshot(path=str(path), full_page=True)
    section = artifacts_dir() / "staff-consent-analytics-newsletter.png"
    page.locator("#purpose-newsletter").screenshot(path=str(section))
    print("\nScreenshots:", path, section)
    assert not failed, failed
    assert not [p for p in problems if not p.startswith("Failed to load resource")], problems

    with page.expect_download() as download:
        page.click("#figure-rights a.csv")
    assert download.value.suggested_filename == "consent-analytics-rights.csv"
