"""Partner clients in the staff admin (the staff-admin issue polishes it): clients saved through
the services (checked and audited), credentials listed by prefix and revocable, never shown."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from rest_framework_api_key.models import APIKey

from partners.models import PartnerClient, PartnerCredential, WebhookDelivery
from partners.services import partner_credential_revoke, webhook_deliveries_replay
from profiles.gate import Actor

admin.site.unregister(APIKey)  # the library's own key model is not used: credentials are partners'


class CredentialInline(admin.TabularInline):
    model = PartnerCredential
    fields = ("prefix", "name", "created", "expiry_date", "last_used_at", "revoked")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PartnerClient)
class PartnerClientAdmin(admin.ModelAdmin):
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
    )
    inlines = (CredentialInline,)
    actions = ("revoke_all_credentials",)

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
