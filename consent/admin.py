"""Staff admin for the purpose register and policy texts; the ledger and its projection are shown
read-only, because a choice is recorded only by the person (or for them) through the services."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from consent.errors import ConsentError
from consent.models import ConsentEvent, ConsentState, PolicyVersion, Purpose
from consent.services import policy_version_check, policy_version_publish
from vault.models import AuditActorType


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PolicyVersionInline(admin.TabularInline):
    model = PolicyVersion
    fields = ("label", "effective_from", "is_material", "sha256")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are published on their own page, through the service


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "legal_basis",
        "dpv_term",
        "data_use",
        "is_sale_or_sharing",
        "requires_double_opt_in",
    )
    list_filter = ("legal_basis", "is_sale_or_sharing", "requires_double_opt_in")
    search_fields = ("slug", "name")
    inlines = (PolicyVersionInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Purpose | None = None) -> tuple[str, ...]:
        # The slug is what callers and the ledger name; the basis decides what past choices mean.
        return ("slug", "legal_basis") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Purpose | None = None) -> bool:
        return False  # the ledger names purposes; retire one by publishing a version that says so


class PolicyVersionForm(forms.ModelForm):
    effective_from = forms.DateTimeField(required=False, help_text="Empty: in force from now.")

    class Meta:
        model = PolicyVersion
        fields = ("purpose", "label", "text", "effective_from", "is_material")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            try:
                policy_version_check(
                    purpose=data["purpose"].slug,
                    label=data["label"],
                    text=data["text"],
                    effective_from=data.get("effective_from"),
                )
            except ConsentError as error:
                field = error.param if error.param in self.fields else None
                self.add_error(field, error.message)
        return data


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Published texts are never edited: a grant names its text by hash. A scheduled version that
    has not taken effect may still be deleted (nobody can have been shown it as in force)."""

    form = PolicyVersionForm
    list_display = ("purpose", "label", "effective_from", "is_material", "sha256")
    list_filter = ("purpose", "is_material")
    list_select_related = ("purpose",)
    readonly_fields = ("sha256", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        scheduled = obj is not None and obj.effective_from > timezone.now()
        return scheduled and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        published = policy_version_publish(
            purpose=obj.purpose.slug,
            label=obj.label,
            text=obj.text,
            effective_from=form.cleaned_data.get("effective_from"),
            is_material=obj.is_material,
            actor_type=AuditActorType.STAFF,
            actor_id=str(request.user.pk),
        )
        obj.pk, obj.sha256, obj.effective_from = published.pk, published.sha256, published.effective_from


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "event_type", "purpose", "subject_id", "method", "policy_version", "jurisdiction")
    list_filter = ("event_type", "method", "purpose")
    list_select_related = ("purpose", "policy_version__purpose")
    # Exact match only: staff find a subject they were given, they do not browse by fragments.
    search_fields = ("=subject_id",)
    date_hierarchy = "occurred_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsentEvent]:
        return super().get_queryset(request).order_by("-occurred_at")


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ("subject_id", "purpose", "status", "policy_version", "changed_at")
    list_filter = ("status", "purpose")
    list_select_related = ("purpose", "policy_version__purpose")
    search_fields = ("=subject_id",)
