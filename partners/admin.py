"""Partner clients in the staff admin: clients saved through the services (checked and audited),
credentials listed by prefix and revocable. A new API key or webhook signing secret is shown
exactly once, on the page that answers its creation (never cached); only the key's prefix and
hash, and the secret sealed, are kept, so no later page can show them again."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from rest_framework_api_key.models import APIKey

from partners.errors import InvalidClient
from partners.models import PartnerClient, PartnerCredential, WebhookDelivery
from partners.services import (
    CLIENT_ATTRS,
    partner_client_check,
    partner_client_create,
    partner_client_update,
    partner_credential_create,
    partner_credential_revoke,
    partner_webhook_secret_rotate,
    webhook_deliveries_replay,
)
from profiles.gate import Actor

CHANGE_PERMISSION = "partners.change_partnerclient"

admin.site.unregister(APIKey)  # the library's own key model is not used: credentials are partners'


class CredentialInline(admin.TabularInline):
    """A client's credentials by prefix: part of the client, seen by whoever may see the client."""

    model = PartnerCredential
    fields = ("prefix", "name", "created", "expiry_date", "last_used_at", "revoked")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("partners.view_partnerclient") or request.user.has_perm(CHANGE_PERMISSION)


class PartnerClientForm(forms.ModelForm):
    class Meta:
        model = PartnerClient
        fields = ("slug", *CLIENT_ATTRS)

    def _post_clean(self) -> None:
        """The service's checks, shown on their field (ModelForm's hook, once the instance is built)."""
        super()._post_clean()  # type: ignore[misc]
        try:
            partner_client_check(self.instance)
        except InvalidClient as error:
            self.add_error(error.param if error.param in self.fields else None, error.message)


@admin.register(PartnerClient)
class PartnerClientAdmin(admin.ModelAdmin):
    form = PartnerClientForm
    list_display = ("slug", "name", "is_active", "rate_limit", "webhook_url")
    fields = (
        "slug",
        "name",
        "purposes",
        "fields",
        "record_kinds",
        "rate_limit",
        "ip_allowlist",
        "webhook_url",
        "is_active",
        "webhook_secret_state",
    )
    readonly_fields = ("webhook_secret_state",)
    inlines = (CredentialInline,)
    actions = ("revoke_all_credentials",)
    change_form_template = "admin/partners/partnerclient/change_form.html"

    @admin.display(description="Webhook signing secret")
    def webhook_secret_state(self, obj: PartnerClient) -> str:
        return "set (shown once when made; rotate to get a new one)" if obj.webhook_secret else "none"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("slug", "webhook_secret_state") if obj is not None else ("webhook_secret_state",)

    def save_model(self, request: HttpRequest, obj: PartnerClient, form: Any, change: bool) -> None:
        """Through the services, so every change is checked and audited."""
        actor = Actor.staff(request.user.pk)
        attrs = {name: form.cleaned_data[name] for name in CLIENT_ATTRS if name in form.cleaned_data}
        if change:
            changed = {name: value for name, value in attrs.items() if name in form.changed_data}
            partner_client_update(client=obj, actor=actor, **changed)
        else:
            name = attrs.pop("name")
            created = partner_client_create(slug=obj.slug, name=name, actor=actor, **attrs)
            obj.pk, obj.created_at = created.pk, created.created_at
            obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: PartnerClient, post_url_continue: str | None = None) -> Any:
        """A new client gets its first API key (and a webhook secret if it has a webhook), shown
        here once."""
        actor = Actor.staff(request.user.pk)
        _, key = partner_credential_create(client=obj, name="first", actor=actor)
        secret = partner_webhook_secret_rotate(client=obj, actor=actor) if obj.webhook_url else ""
        return self._shown_once(request, obj, key=key, webhook_secret=secret, title=f"Client {obj.slug} created")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        client = self.get_object(request, unquote(object_id))
        extra: dict[str, Any] = {}
        if client is not None and request.user.has_perm(CHANGE_PERMISSION):
            extra["credential_url"] = reverse("admin:partners_partnerclient_credential", args=[client.pk])
            extra["webhook_secret_url"] = reverse("admin:partners_partnerclient_webhook_secret", args=[client.pk])
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<uuid:client_id>/credential/", view(self.credential_view), name="partners_partnerclient_credential"),
            path(
                "<uuid:client_id>/webhook-secret/",
                view(self.webhook_secret_view),
                name="partners_partnerclient_webhook_secret",
            ),
            *super().get_urls(),
        ]

    def credential_view(self, request: HttpRequest, client_id: Any) -> HttpResponse:
        """GET: asks; POST: issues a new API key (the others stay valid until revoked)."""
        client = self._client_to_change(request, client_id)
        if request.method != "POST":
            return self._ask(request, client, "Issue a new API key", "Issue the key")
        _, key = partner_credential_create(
            client=client, name="issued in the admin", actor=Actor.staff(request.user.pk)
        )
        return self._shown_once(request, client, key=key, title=f"New API key for {client.slug}")

    def webhook_secret_view(self, request: HttpRequest, client_id: Any) -> HttpResponse:
        """GET: asks; POST: a new webhook signing secret replaces the old one at once."""
        client = self._client_to_change(request, client_id)
        if request.method != "POST":
            return self._ask(
                request,
                client,
                "Rotate the webhook signing secret",
                "Rotate it",
                "Deliveries are signed with the new secret from now on: the partner must switch to it.",
            )
        secret = partner_webhook_secret_rotate(client=client, actor=Actor.staff(request.user.pk))
        return self._shown_once(request, client, webhook_secret=secret, title=f"New webhook secret for {client.slug}")

    def _client_to_change(self, request: HttpRequest, client_id: Any) -> PartnerClient:
        if not request.user.has_perm(CHANGE_PERMISSION):
            raise PermissionDenied
        return get_object_or_404(PartnerClient, pk=client_id)

    def _context(self, request: HttpRequest, client: PartnerClient, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "client": client,
            "back": reverse("admin:partners_partnerclient_change", args=[client.pk]),
        }

    def _ask(
        self, request: HttpRequest, client: PartnerClient, title: str, button: str, note: str = ""
    ) -> HttpResponse:
        context = {**self._context(request, client, title), "button": button, "note": note}
        return TemplateResponse(request, "admin/partners/partnerclient/ask.html", context)

    def _shown_once(
        self, request: HttpRequest, client: PartnerClient, *, title: str, key: str = "", webhook_secret: str = ""
    ) -> HttpResponse:
        """The one page that shows a new secret: never stored by the browser or a proxy."""
        context = {**self._context(request, client, title), "key": key, "webhook_secret": webhook_secret}
        response = TemplateResponse(request, "admin/partners/partnerclient/shown_once.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke every credential of the selected clients")
    def revoke_all_credentials(self, request: HttpRequest, queryset: Any) -> None:
        actor = Actor.staff(request.user.pk)
        count = 0
        for credential in PartnerCredential.objects.filter(client__in=queryset, revoked=False):
            partner_credential_revoke(credential=credential, actor=actor)
            count += 1
        messages.success(request, f"{count} credential(s) revoked.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only, with a replay action (same webhook-id, attempts from zero)."""

    list_display = ("event_type", "client", "status", "attempts", "last_status_code", "last_error", "created_at")
    list_filter = ("status", "event_type", "client")
    readonly_fields = (
        "id",
        "client",
        "event_id",
        "event_type",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )
    actions = ("replay",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        """Replaying sends data to a partner again: staff who may change deliveries only."""
        return request.user.has_perm("partners.change_webhookdelivery")

    @admin.action(description="Replay the selected deliveries", permissions=("replay",))
    def replay(self, request: HttpRequest, queryset: Any) -> None:
        count = webhook_deliveries_replay(
            delivery_ids=queryset.values_list("pk", flat=True), actor=Actor.staff(request.user.pk)
        )
        messages.success(request, f"{count} deliver(ies) queued again.")
