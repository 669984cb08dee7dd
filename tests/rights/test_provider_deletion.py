"""Meta's data deletion callback (accounts/social/meta.py, rights/services/provider_deletion.py,
rights/provider_views.py): verified in constant time, answered with a confirmation code and a
public status page that names no one; a request that does not verify deletes nothing."""

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.test import Client

from accounts.models import SealedSocialAccountData, SealedSocialToken, User
from accounts.social.meta import SignedRequestInvalid, meta_signed_request_verify
from profiles.gate import RIGHTS_PURPOSE, Actor, profile_write
from profiles.models import ProfileValue, Source
from rights.models import Channel, Kind, ProviderDeletion, RightsRequest, Status, Verification
from vault.models import AuditEntry, ErasedSubject

pytestmark = pytest.mark.usefixtures("profile_schema")

URL = "/api/v1/providers/facebook/data-deletion/"
SECRET = "897z956a2z7zzzzz5783z458zz3z7556"
PAYLOAD = {"algorithm": "HMAC-SHA256", "expires": 1291840400, "issued_at": 1291836800, "user_id": "218471"}
# The same payload, signed with SECRET, written out once (so the test does not only check itself).
KNOWN = (
    "yyphVXlhdliF651nX3kWSArVnfYKaADaTStE4sMZRxE."
    "eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImV4cGlyZXMiOjEyOTE4NDA0MDAsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: Any, secret: str = SECRET, *, raw: bytes | None = None) -> str:
    encoded = b64(raw if raw is not None else json.dumps(payload).encode())
    return b64(hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()) + "." + encoded


@pytest.fixture
def facebook(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"facebook": {"APPS": [{"client_id": "vault-fb", "secret": SECRET}]}}


@pytest.fixture
def linked(alice, facebook) -> SocialAccount:
    account = SocialAccount.objects.create(user=alice, provider="facebook", uid="218471", extra_data={"id": "218471"})
    SocialToken.objects.create(account=account, token="fb-access-token")
    profile_write(
        subject_id=alice.pk,
        values={"given_name": "Ada", "city": "Leiden"},
        source=Source.SOCIAL,
        source_name="facebook",
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )
    profile_write(
        subject_id=alice.pk,
        values={"shoe_size": "38"},
        source=Source.SELF_SERVICE,
        purpose=RIGHTS_PURPOSE,
        actor=Actor.person(alice.pk),
    )
    return account


def post(body: str | None, **extra: Any) -> Any:
    data = {} if body is None else {"signed_request": body}
    return Client().post(URL, data, **extra)


# --- Verification ------------------------------------------------------------------------------------
def test_a_known_vector_verifies():
    assert meta_signed_request_verify(signed_request=KNOWN, app_secret=SECRET) == PAYLOAD
    assert meta_signed_request_verify(signed_request=signed(PAYLOAD), app_secret=SECRET) == PAYLOAD


@pytest.mark.parametrize(
    "signed_request",
    [
        pytest.param(KNOWN.replace("yyph", "yyPh"), id="tampered signature"),
        pytest.param(KNOWN[:-4] + "fQ", id="tampered payload"),
        pytest.param(signed(PAYLOAD, "another-secret"), id="another secret"),
        pytest.param(signed({**PAYLOAD, "algorithm": "HMAC-SHA1"}), id="wrong algorithm"),
        pytest.param(signed({k: v for k, v in PAYLOAD.items() if k != "algorithm"}), id="no algorithm"),
        pytest.param(signed({**PAYLOAD, "user_id": None}), id="no user id"),
        pytest.param(signed(["HMAC-SHA256"]), id="not an object"),
        pytest.param(signed(None, raw=b"not json"), id="not JSON"),
        pytest.param(signed(None, raw=b"\xff\xfe"), id="not UTF-8"),
        pytest.param("nodothere", id="no dot"),
        pytest.param("." + KNOWN.split(".")[1], id="no signature"),
        pytest.param("!!!." + KNOWN.split(".")[1], id="bad base64 signature"),
        pytest.param(KNOWN.split(".")[0] + ".***", id="bad base64 payload"),
        pytest.param(KNOWN + "é", id="non-ASCII"),
    ],
)
def test_what_does_not_verify_is_refused(signed_request):
    with pytest.raises(SignedRequestInvalid):
        meta_signed_request_verify(signed_request=signed_request, app_secret=SECRET)


# --- The callback: scope "provider" (the default) ------------------------------------------------------
def test_a_verified_request_deletes_what_facebook_brought_and_unlinks(alice, linked):
    response = post(KNOWN)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"url", "confirmation_code"}
    code = body["confirmation_code"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", code)
    assert body["url"] == f"http://testserver/privacy/provider-deletion/{code}/"
    assert not SocialAccount.objects.filter(pk=linked.pk).exists()
    assert not SealedSocialToken.objects.exists() and not SealedSocialAccountData.objects.exists()
    assert not ProfileValue.objects.filter(subject_id=alice.pk, source=Source.SOCIAL).exists()
    assert ProfileValue.objects.filter(subject_id=alice.pk, definition__key="shoe_size").exists(), "their own stays"
    assert User.objects.filter(pk=alice.pk, is_active=True).exists(), "the account stays"
    assert AuditEntry.objects.get(action="social.provider_deletion").actor_id == "social.provider-deletion"
    assert AuditEntry.objects.get(action="profile.source_purge").fields == [
        "profilevalue.city",
        "profilevalue.given_name",
    ]
    deletion = ProviderDeletion.objects.get(code=code)
    assert deletion.status == "completed" and deletion.completed_at is not None


def test_facebook_is_not_asked_to_revoke(linked, monkeypatch):
    import requests

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no call to the provider")

    monkeypatch.setattr(requests, "delete", refuse)
    monkeypatch.setattr(requests, "post", refuse)
    assert post(KNOWN).status_code == 200
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        KNOWN.replace("yyph", "yyPh"),
        signed({**PAYLOAD, "algorithm": "HMAC-SHA1"}),
        "nodothere",
        signed(None, raw=b"not json"),
    ],
)
def test_a_request_that_does_not_verify_is_400_in_the_envelope_and_deletes_nothing(alice, linked, body):
    response = post(body)

    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "errors": [
            {
                "code": "signed_request_invalid",
                "message": "The signed_request is malformed or its signature does not verify.",
                "param": "signed_request",
            }
        ],
    }
    assert SocialAccount.objects.filter(pk=linked.pk).exists()
    assert ProfileValue.objects.filter(subject_id=alice.pk, source=Source.SOCIAL).count() == 2
    assert not ProviderDeletion.objects.exists()


def test_a_missing_signed_request_is_400(facebook):
    response = post(None)
    assert response.status_code == 400
    assert response.json()["errors"][0]["param"] == "signed_request"


def test_an_oversized_body_is_refused_and_deletes_nothing(linked, settings):
    too_long = post("a" * 9000 + "." + KNOWN.split(".")[1])
    assert too_long.status_code == 400 and SocialAccount.objects.exists(), "longer than Meta ever sends"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = post(KNOWN + "x" * 2000)
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "too_large"
    assert SocialAccount.objects.exists()


def test_an_unknown_user_gets_the_same_answer_and_a_completed_code(alice, linked):
    response = post(signed({**PAYLOAD, "user_id": "999999"}))

    assert response.status_code == 200
    assert set(response.json()) == {"url", "confirmation_code"}
    deletion = ProviderDeletion.objects.get(code=response.json()["confirmation_code"])
    assert deletion.status == "completed"
    assert SocialAccount.objects.filter(pk=linked.pk).exists(), "nobody else's data goes"


def test_without_a_facebook_app_the_callback_is_404(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}
    response = post(KNOWN)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "provider_not_configured"


def test_the_callback_needs_no_csrf_token_and_no_session(linked):
    response = Client(enforce_csrf_checks=True).post(URL, {"signed_request": KNOWN})
    assert response.status_code == 200


def test_the_callback_is_rate_limited(linked, settings, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "provider_callback": "2/minute"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    try:
        statuses = [post(signed({**PAYLOAD, "user_id": str(n)})).status_code for n in range(3)]
    finally:
        cache.clear()
    assert statuses == [200, 200, 429]


# --- Scope "account": the person is erased through the rights app --------------------------------------
def test_with_scope_account_the_person_is_erased_as_a_provider_request(
    alice, linked, settings, django_capture_on_commit_callbacks, caplog
):
    settings.SOCIAL_FACEBOOK_DELETION_SCOPE = "account"

    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", logger="accounts.social"):
        response = post(KNOWN)
    assert not [r for r in caplog.records if r.name == "accounts.social.revocation"], (
        "the person removed the app at Facebook: nothing is left to revoke, and nothing is tried"
    )

    assert response.status_code == 200
    assert ErasedSubject.objects.filter(pk=alice.pk).exists()
    assert not User.objects.filter(pk=alice.pk).exists(), "purged (the tasks run eagerly here)"
    assert not ProfileValue.objects.filter(subject_id=alice.pk).exists()
    steps = list(AuditEntry.objects.filter(action__startswith="rights.").values_list("action", flat=True))
    assert steps[:2] == ["rights.receive", "rights.verify"]
    deletion = ProviderDeletion.objects.get(code=response.json()["confirmation_code"])
    assert deletion.status == "completed"


def test_with_scope_account_an_open_erasure_runs_now(alice, linked, settings, django_capture_on_commit_callbacks):
    from rights.services.erasure import erasure_request

    settings.SOCIAL_FACEBOOK_DELETION_SCOPE = "account"
    request = erasure_request(
        subject_id=alice.pk, channel=Channel.PORTAL, verification="", actor=Actor.person(alice.pk), confirm=True
    )
    assert request.status == Status.RECEIVED

    with django_capture_on_commit_callbacks(execute=True):
        assert post(KNOWN).status_code == 200
    assert not User.objects.filter(pk=alice.pk).exists()


def test_with_scope_account_a_legal_hold_keeps_the_code_in_progress(alice, linked, settings):
    from rights.services.erasure import erasure_request

    settings.SOCIAL_FACEBOOK_DELETION_SCOPE = "account"
    request = erasure_request(
        subject_id=alice.pk,
        channel=Channel.PORTAL,
        verification=Verification.REAUTHENTICATION,
        actor=Actor.person(alice.pk),
        confirm=True,
    )
    RightsRequest.objects.filter(pk=request.pk).update(legal_hold=True)

    response = post(KNOWN)

    assert response.status_code == 200
    assert User.objects.filter(pk=alice.pk).exists()
    assert ProviderDeletion.objects.get(code=response.json()["confirmation_code"]).status == "received"
    page = Client().get(response.json()["url"]).content.decode()
    assert "In progress." in page
    assert not SocialAccount.objects.filter(pk=linked.pk).exists(), "what Facebook brought goes at once, hold or not"

    # The hold is lifted and the erasure runs: the code completes with it, and forgets the request.
    from rights.services import erasure_execute

    RightsRequest.objects.filter(pk=request.pk).update(legal_hold=False)
    assert erasure_execute(request_id=request.pk) == alice.pk
    deletion = ProviderDeletion.objects.get(code=response.json()["confirmation_code"])
    assert (deletion.status, deletion.request_id) == ("completed", None)
    assert "In progress." not in Client().get(response.json()["url"]).content.decode()


def test_the_erasure_request_says_the_provider_asked(alice, linked, settings):
    from rights.services.erasure import erasure_by_provider

    RightsRequest.objects.all().delete()
    settings.SOCIAL_FACEBOOK_DELETION_SCOPE = "account"
    seen: list[RightsRequest] = []
    from django.db.models.signals import post_save

    def keep(sender: Any, instance: RightsRequest, **kwargs: Any) -> None:
        seen.append(instance)

    post_save.connect(keep, sender=RightsRequest, weak=False)
    try:
        assert erasure_by_provider(subject_id=alice.pk, provider="facebook") is None
    finally:
        post_save.disconnect(keep, sender=RightsRequest)
    assert (seen[0].kind, seen[0].channel, seen[-1].verification) == (Kind.ERASURE, "provider", "provider")
    assert erasure_by_provider(subject_id=alice.pk, provider="facebook") is None, "already erased: done"


# --- The status page ---------------------------------------------------------------------------------
def test_the_status_page_shows_the_code_status_and_date_and_nothing_personal(alice, linked):
    body = post(KNOWN).json()

    page = Client().get(body["url"])

    assert page.status_code == 200
    text = page.content.decode()
    assert body["confirmation_code"] in text and "Completed on" in text
    for personal in ("218471", alice.email, str(alice.pk), "Ada", "Leiden"):
        assert personal not in text


def test_an_unknown_code_is_404():
    assert Client().get("/privacy/provider-deletion/not-a-code/").status_code == 404
