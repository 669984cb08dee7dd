"""Partner clients in the staff admin (the staff-admin issue polishes it): clients saved through
the services (checked and audited), credentials listed by prefix and revocable, never shown."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from rest_framework_api_key.models import APIKey

from partners.models import PartnerClient, PartnerCredential
from partners.services import partner_credential_revoke
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
