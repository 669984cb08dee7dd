"""Staff admin for the purpose register and policy texts; the ledger and its projection are shown
read-only, because a choice is recorded only by the person (or for them) through the services.

A policy text is written as a draft, edited freely, then published (a confirmation page shows,
for a material change, how many current grants will need renewing): publishing makes it an
immutable `PolicyVersion` through the service, which audits it."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from consent.errors import ConsentError
from consent.models import ConsentEvent, ConsentState, PolicyDraft, PolicyVersion, Purpose
from consent.selectors import consent_renewals_if_material
from consent.services import policy_draft_publish, policy_version_check
from vault.models import AuditActorType

PUBLISH_PERMISSION = "consent.add_policyversion"


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


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Published texts are never edited: a grant names its text by hash. They are published from
    a draft (`PolicyDraftAdmin`). A scheduled version that has not taken effect may still be
    deleted (nobody can have been shown it as in force); its draft is then a draft again."""

    list_display = ("purpose", "label", "effective_from", "is_material", "sha256")
    list_filter = ("purpose", "is_material")
    list_select_related = ("purpose",)
    readonly_fields = ("purpose", "label", "text", "effective_from", "is_material", "sha256", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written as a draft, published from there

    def has_change_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        scheduled = obj is not None and obj.effective_from > timezone.now()
        return scheduled and super().has_delete_permission(request, obj)


class PolicyDraftForm(forms.ModelForm):
    class Meta:
        model = PolicyDraft
        fields = ("purpose", "label", "text", "effective_from", "is_material")

    def clean(self) -> dict[str, Any]:
        """What publishing would refuse is said now, on its field (it is checked again then)."""
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


@admin.register(PolicyDraft)
class PolicyDraftAdmin(admin.ModelAdmin):
    form = PolicyDraftForm
    list_display = ("purpose", "label", "is_material", "effective_from", "state", "updated_at")
    list_filter = ("purpose", "is_material")
    list_select_related = ("purpose", "published")
    readonly_fields = ("created_by", "published", "created_at", "updated_at")
    change_form_template = "admin/consent/policydraft/change_form.html"

    @admin.display(description="State")
    def state(self, obj: PolicyDraft) -> str:
        return f"published {obj.published.effective_from:%Y-%m-%d %H:%M}" if obj.published else "draft"

    def has_change_permission(self, request: HttpRequest, obj: PolicyDraft | None = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PolicyDraft | None = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: PolicyDraft, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = str(request.user.pk)
        super().save_model(request, obj, form, change)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        draft = self.get_object(request, unquote(object_id))
        publish_url = ""
        if draft is not None and not draft.is_published and request.user.has_perm(PUBLISH_PERMISSION):
            publish_url = reverse("admin:consent_policydraft_publish", args=[draft.pk])
        extra = {"publish_url": publish_url}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self) -> list[URLPattern]:
        publish = path(
            "<uuid:draft_id>/publish/",
            self.admin_site.admin_view(self.publish_view),
            name="consent_policydraft_publish",
        )
        return [publish, *super().get_urls()]

    def publish_view(self, request: HttpRequest, draft_id: Any) -> HttpResponse:
        """GET: what publishing would do (for a material change, how many current grants would
        need renewing); POST: publish through the service, audited under the staff member."""
        if not request.user.has_perm(PUBLISH_PERMISSION):
            raise PermissionDenied
        draft = get_object_or_404(PolicyDraft.objects.select_related("purpose"), pk=draft_id)
        change_url = reverse("admin:consent_policydraft_change", args=[draft.pk])
        if draft.is_published:
            messages.error(request, "This draft is already published.")
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            try:
                version = policy_draft_publish(
                    draft_id=draft.pk, actor_type=AuditActorType.STAFF, actor_id=str(request.user.pk)
                )
            except ConsentError as error:
                messages.error(request, error.message)
                return HttpResponseRedirect(change_url)
            messages.success(request, f"Published {version}, in force from {version.effective_from:%Y-%m-%d %H:%M}.")
            return HttpResponseRedirect(reverse("admin:consent_policyversion_change", args=[version.pk]))
        renewals = (
            consent_renewals_if_material(purpose=draft.purpose.slug, effective_from=draft.effective_from)
            if draft.is_material
            else 0
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish {draft.purpose.slug}/{draft.label}",
            "opts": self.opts,
            "draft": draft,
            "renewals": renewals,
            "back": change_url,
        }
        return TemplateResponse(request, "admin/consent/policydraft/publish.html", context)


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
