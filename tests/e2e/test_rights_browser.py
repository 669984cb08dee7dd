"""A person's whole path through their rights, in a real browser against the live server: sign
up, ask for an export, download it and open its README, ask for erasure, cancel it, ask again,
let the grace period pass; then signing in fails. Screenshots in var/test-artifacts/rights/."""

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache

from accounts.models import User
from rights.models import RightsRequest
from rights.tasks import erasures_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "rights"
EMAIL = "ines@demo.example"
PASSWORD = "a sturdy passphrase 42"


@pytest.fixture
def fresh(committed_db, profile_schema, settings, tmp_path):
    from config.celery import app

    settings.RIGHTS_ERASURE_GRACE_HOURS = 24
    settings.VAULT_ERASURE_JOURNAL = str(tmp_path / "erasure-journal.jsonl")
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the export job runs in the server, whatever the broker
    cache.clear()
    mail.outbox = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield
    app.conf.task_always_eager = before
    cache.clear()


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_login", EMAIL)
    page.fill("#id_password", PASSWORD)
    page.locator("form.login").get_by_role("button", name="Sign in").click()


def test_export_then_erasure_cancelled_then_erasure(page, live_server, fresh, settings, tmp_path):
    base = live_server.url
    shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # noqa: E731

    # Sign up and verify the address.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_email", EMAIL)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_label("Date of birth").fill("1990-06-01")
    page.get_by_label("Country you live in").select_option("NL")
    page.get_by_label("Analytics").check()
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(f"{base}/accounts/confirm-email/")
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^/\s]+/", str(mail.outbox[-1].body))
    assert link
    page.goto(f"{base}/accounts/{link.group(0).split('/accounts/', 1)[1]}")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r".*/accounts/login/$"))
    _sign_in(page, base)
    page.wait_for_url(f"{base}/")

    # The privacy centre: ask for an export; it is built and offered for download.
    page.get_by_role("link", name="Privacy centre").first.click()
    assert "Coming soon" not in page.content()
    shot("1-privacy-centre")
    page.get_by_role("button", name="Prepare my export").click()
    page.wait_for_url(re.compile(r".*/privacy/requests/[0-9a-f-]+/$"))
    page.locator("#export-download").wait_for()
    shot("2-export-ready")
    with page.expect_download() as download:
        page.locator("#export-download").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = set(archive.namelist())
    assert {"README.html", "profile.json", "consents.json", "access_log.json", "requests.json"} <= names
    readme = tmp_path / "README.html"
    readme.write_bytes(archive.read("README.html"))
    page.goto(readme.as_uri())
    assert "profile.json" in page.content()
    shot("3-export-readme")

    # Erasure: confirmed, then cancelled within the grace period.
    page.goto(f"{base}/privacy/delete-account/")
    page.locator("#erase-submit").click()
    assert "confirm it explicitly" in page.content()
    page.get_by_label(re.compile("delete my account and all my data")).check()
    page.locator("#erase-submit").click()
    page.wait_for_url(re.compile(r".*/privacy/requests/[0-9a-f-]+/$"))
    assert "unless you cancel" in page.content()
    shot("4-erasure-pending")
    page.locator("#request-cancel").click()
    page.wait_for_load_state()
    assert page.locator("#request-status").inner_text() == "Cancelled"
    shot("5-erasure-cancelled")

    # Asked again; the grace period passes (the beat task runs), and the account is gone.
    page.goto(f"{base}/privacy/delete-account/")
    page.get_by_label(re.compile("delete my account and all my data")).check()
    page.locator("#erase-submit").click()
    page.wait_for_url(re.compile(r".*/privacy/requests/[0-9a-f-]+/$"))
    user = User.objects.get(email=EMAIL)
    RightsRequest.objects.filter(subject_id=user.pk, status="verified").update(grace_ends_at="2000-01-01T00:00:00Z")
    assert erasures_run() == 1
    assert not User.objects.filter(pk=user.pk).exists()
    page.goto(f"{base}/privacy/")
    page.wait_for_url(re.compile(r".*/accounts/login/.*"))
    _sign_in(page, base)
    page.wait_for_load_state()
    shot("6-sign-in-fails")
    assert "/accounts/login/" in page.url
    assert "not correct" in page.content() or "incorrect" in page.content().lower()
