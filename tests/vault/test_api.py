"""Every API error leaves in one envelope: {"status": ..., "errors": [{"code", "message", "param"}]}."""

import pytest
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from vault.api import PersonAPIView
from vault.errors import ApplicationError, ErrorKind, InvalidInput


class _AddressInput(serializers.Serializer):
    city = serializers.CharField()


class _Input(serializers.Serializer):
    email = serializers.EmailField()
    size = serializers.IntegerField(min_value=1)
    address = _AddressInput()
    brand = serializers.ChoiceField(choices=["acme", "globex"], required=False)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)


class EchoView(APIView):
    def post(self, request):
        serializer = _Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"ok": True})


class StaffOnlyView(APIView):
    permission_classes = (IsAdminUser,)

    def get(self, request):
        return Response({"ok": True})


class ConflictView(APIView):
    def post(self, request):
        raise ApplicationError("That purpose is already granted.", code="already_granted", param="purpose")


class GoneError(ApplicationError):
    kind = ErrorKind.GONE
    code = "person_erased"
    message = "This person's data was erased."


class SeveralView(APIView):
    def post(self, request):
        raise InvalidInput(
            [ApplicationError("Not a date.", code="invalid_value", param="birth_date"), GoneError(param="city")]
        )


class GoneView(APIView):
    def get(self, request):
        raise GoneError()


class WhoAmIView(PersonAPIView):
    def get(self, request):
        return Response({"subject": str(self.subject)})


class CrashView(APIView):
    def get(self, request):
        raise RuntimeError("database said: value 'alice@example.com' is too long")


urlpatterns = [
    path("api/v1/test/echo/", EchoView.as_view()),
    path("api/v1/test/staff/", StaffOnlyView.as_view()),
    path("api/v1/test/conflict/", ConflictView.as_view()),
    path("api/v1/test/crash/", CrashView.as_view()),
    path("api/v1/test/several/", SeveralView.as_view()),
    path("api/v1/test/gone/", GoneView.as_view()),
    path("api/v1/test/whoami/", WhoAmIView.as_view()),
]


def assert_envelope(response, status, content_type="application/json"):
    assert response.status_code == status
    assert response["Content-Type"] == content_type
    body = response.json()
    assert body["status"] == status
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) <= {"code", "message", "param"}
        assert error["code"] and error["message"]
    return body["errors"]


@pytest.mark.urls(__name__)
def test_400_names_each_field_including_nested_ones(client, alice):
    client.force_login(alice)
    response = client.post(
        "/api/v1/test/echo/", {"email": "not-an-email", "size": 0, "address": {}}, content_type="application/json"
    )
    errors = assert_envelope(response, 400)
    assert {(e["param"], e["code"]) for e in errors} == {
        ("email", "invalid"),
        ("size", "min_value"),
        ("address.city", "required"),
    }
    assert "not-an-email" not in response.content.decode(), "errors must not echo submitted values"


@pytest.mark.urls(__name__)
def test_400_never_echoes_the_submitted_value(client, alice):
    client.force_login(alice)
    payload = {"email": "a@b.example", "size": 1, "address": {"city": "x"}}
    payload |= {"brand": "grace@example.com", "owner": "00000000-0000-0000-0000-000000000000"}
    response = client.post("/api/v1/test/echo/", payload, content_type="application/json")
    errors = assert_envelope(response, 400)
    assert {(e["param"], e["code"]) for e in errors} == {("brand", "invalid_choice"), ("owner", "does_not_exist")}
    body = response.content.decode()
    assert "grace@example.com" not in body
    assert "00000000-0000" not in body


@pytest.mark.urls(__name__)
def test_400_on_malformed_json(client, alice):
    client.force_login(alice)
    response = client.post("/api/v1/test/echo/", "{not json", content_type="application/json")
    assert assert_envelope(response, 400)[0]["code"] == "parse_error"


@pytest.mark.urls(__name__)
def test_application_error_keeps_its_code_and_param(client, alice):
    client.force_login(alice)
    errors = assert_envelope(client.post("/api/v1/test/conflict/"), 400)
    assert errors == [{"code": "already_granted", "message": "That purpose is already granted.", "param": "purpose"}]


def test_401_for_anonymous_callers(client):
    response = client.get("/api/v1/me/")
    assert assert_envelope(response, 401)[0]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"]


@pytest.mark.urls(__name__)
def test_403_for_an_authenticated_caller_without_permission(client, alice):
    client.force_login(alice)
    assert assert_envelope(client.get("/api/v1/test/staff/"), 403)[0]["code"] == "permission_denied"


def test_404_for_an_unknown_api_url(client, alice):
    client.force_login(alice)
    assert assert_envelope(client.get("/api/v1/no-such-thing/"), 404)[0]["code"] == "not_found"


def test_405_for_a_wrong_method(client, alice):
    client.force_login(alice)
    assert assert_envelope(client.delete("/api/v1/me/"), 405)[0]["code"] == "method_not_allowed"


@pytest.mark.urls(__name__)
def test_unexpected_errors_are_a_json_500_that_reveals_nothing(client, alice, caplog):
    client.force_login(alice)
    response = client.get("/api/v1/test/crash/")
    assert assert_envelope(response, 500)[0]["code"] == "server_error"
    assert "alice" not in response.content.decode()


@pytest.fixture
def anon_rate_two_per_minute(monkeypatch):
    """DRF reads throttle rates once, at import; patch the class attribute for this test."""
    from django.core.cache import cache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "user": None})
    cache.clear()
    yield
    cache.clear()


@pytest.mark.usefixtures("anon_rate_two_per_minute")
def test_throttling_answers_429_in_the_envelope(client):
    for _ in range(2):
        assert client.get("/api/schema/?format=json").status_code == 200
    response = client.get("/api/schema/?format=json")
    assert assert_envelope(response, 429, "application/vnd.oai.openapi+json")[0]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls(__name__)
def test_a_domain_error_kind_gives_its_status_and_every_problem_is_listed(client, alice):
    client.force_login(alice)
    assert assert_envelope(client.get("/api/v1/test/gone/"), 410) == [
        {"code": "person_erased", "message": "This person's data was erased."}
    ]
    errors = assert_envelope(client.post("/api/v1/test/several/", {}, content_type="application/json"), 400)
    assert [(e["code"], e["param"]) for e in errors] == [("invalid_value", "birth_date"), ("person_erased", "city")]


@pytest.mark.urls(__name__)
def test_a_person_view_answers_about_the_caller_only(client, alice, bob):
    assert client.get("/api/v1/test/whoami/").status_code in (401, 403)
    client.force_login(alice)
    assert client.get("/api/v1/test/whoami/", {"subject": str(bob.pk)}).json() == {"subject": str(alice.pk)}


def test_a_person_view_cannot_drop_authentication_or_choose_its_subject():
    with pytest.raises(TypeError, match="IsAuthenticated"):

        class Open(PersonAPIView):
            permission_classes = (AllowAny,)

    with pytest.raises(TypeError, match="subject"):

        class Chooser(PersonAPIView):
            subject = None

    with pytest.raises(TypeError, match="get_permissions"):

        class Loosened(PersonAPIView):
            def get_permissions(self):
                return []
