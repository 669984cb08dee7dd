"""Staff admin for the profile schema and the kinds of documents and events.

Field definitions are saved through the services, so the admin and the staff API version and
audit changes alike. A change or a deprecation is saved in two steps: the first shows what it
would do to the stored values (counted by `field_definition_change_effect`, nothing decrypted),
the second, confirmed, saves it. Values, documents and events are not shown here: they are ciphertext, and
reading them is a gated, audited reveal (the staff-admin issue).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from consent.admin import ReadOnlyAdmin
from profiles.errors import InvalidDefinition, MergeError
from profiles.gate import Actor
from profiles.models import FieldDefinition, FieldDefinitionVersion, Merge, RecordKind
from profiles.selectors import SchemaChangeEffect, field_definition_change_effect
from profiles.services import (
    DEFINITION_ATTRS,
    definition_check,
    field_definition_create,
    field_definition_deprecate,
    field_definition_update,
    profile_merge_undo,
)

CONFIRMED = "_confirmed"  # the second step of a change: the staff member saw its effect
_SAVE_BUTTONS = ("_save", "_continue", "_addanother")


class FieldDefinitionForm(forms.ModelForm):
    class Meta:
        model = FieldDefinition
        fields = ("key", *DEFINITION_ATTRS, "purposes")

    def _post_clean(self) -> None:
        """ModelForm's hook, run once the instance is built from the form."""
        super()._post_clean()  # type: ignore[misc]
        try:
            definition_check(self.instance)
        except InvalidDefinition as error:
            self.add_error(error.param if error.param in self.fields else None, error.message)


class VersionInline(admin.TabularInline):
    model = FieldDefinitionVersion
    fields = ("version", "created_at", "changed_by", "snapshot")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FieldDefinition)
class FieldDefinitionAdmin(admin.ModelAdmin):
    form = FieldDefinitionForm
    list_display = ("key", "label", "field_type", "category", "is_special_category", "searchable", "version")
    list_filter = ("category", "field_type", "is_special_category", "deprecated_at")
    search_fields = ("key", "label")
    filter_horizontal = ("purposes",)
    inlines = (VersionInline,)
    actions = ("deprecate",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("key", "field_type") if obj is not None else ()
        return (*fixed, "version", "deprecated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a field is deprecated, never deleted: stored values depend on it

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """A change that is valid and changes something is shown with its effect first; the
        confirmation page posts the same form again, marked confirmed, and that one is saved."""
        if request.method == "POST" and object_id is not None and CONFIRMED not in request.POST:
            action_only = any(n == "action" or n.endswith("-action") for n in request.POST) and not any(
                n in request.POST for n in _SAVE_BUTTONS
            )
            if not action_only and (preview := self._change_preview(request, object_id)) is not None:
                return preview
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _change_preview(self, request: HttpRequest, object_id: str) -> HttpResponse | None:
        """The confirmation page, or None to let the admin go on (an invalid form shows its
        errors, an unchanged one saves nothing new, no permission answers 403 there)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            return None
        form = self.get_form(request, obj, change=True)(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return None
        data = form.cleaned_data
        changes = {name: data[name] for name in DEFINITION_ATTRS if name in data and name != "field_type"}
        purposes = [purpose.slug for purpose in data["purposes"]]
        effect = field_definition_change_effect(key=obj.key, changes=changes, purposes=purposes)
        if not effect.changed:
            return None
        carried = [
            (name, value)
            for name, values in request.POST.lists()
            if name not in ("csrfmiddlewaretoken", *_SAVE_BUTTONS)
            for value in values
        ]
        button = next((name for name in _SAVE_BUTTONS if name in request.POST), "_save")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Confirm the change of {obj.key}",
            "opts": self.opts,
            "effects": [effect],
            "carried": carried,
            "button": button,
            "confirmed": CONFIRMED,
            "back": reverse("admin:profiles_fielddefinition_change", args=[obj.pk]),
        }
        return TemplateResponse(request, "admin/profiles/fielddefinition/confirm_change.html", context)

    def save_model(self, request: HttpRequest, obj: FieldDefinition, form: Any, change: bool) -> None:
        """Saved in `save_related`, through the service, together with its purposes."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        attrs = {name: data[name] for name in DEFINITION_ATTRS if name in data}
        purposes = [purpose.slug for purpose in data["purposes"]]
        actor = Actor.staff(request.user.pk)
        if change:
            attrs.pop("field_type", None)
            field_definition_update(key=form.instance.key, purposes=purposes, actor=actor, **attrs)
        else:
            created = field_definition_create(key=data["key"], purposes=purposes, actor=actor, **attrs)
            form.instance.pk = created.pk
        for formset in formsets:  # the read-only version history: saves nothing, as the admin expects
            self.save_formset(request, form, formset, change)

    @admin.action(
        description="Deprecate (no new values; stored ones live out their retention)", permissions=("change",)
    )
    def deprecate(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """First what it would affect, then (the page's "post" = yes) the deprecation."""
        definitions = list(queryset)
        if request.POST.get("post") != "yes":
            effects: list[SchemaChangeEffect] = [
                field_definition_change_effect(key=d.key, changes={}, deprecate=True) for d in definitions
            ]
            context = {
                **self.admin_site.each_context(request),
                "title": "Confirm the deprecation",
                "opts": self.opts,
                "effects": effects,
                "selected": [d.pk for d in definitions],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "changelist": reverse("admin:profiles_fielddefinition_changelist"),
            }
            return TemplateResponse(request, "admin/profiles/fielddefinition/confirm_deprecate.html", context)
        for definition in definitions:
            field_definition_deprecate(key=definition.key, actor=Actor.staff(request.user.pk))
        self.message_user(request, f"{len(definitions)} field(s) deprecated.", messages.SUCCESS)
        return None


@admin.register(RecordKind)
class RecordKindAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "shape", "category", "purpose", "retention_days")
    list_filter = ("shape", "category")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Merge)
class MergeAdmin(ReadOnlyAdmin):
    """Merges are made by the service (staff API, verified email) and shown here; the one change
    staff make here is undoing one, through the service, which needs the change permission."""

    list_display = ("created_at", "reason", "survivor_id", "merged_id", "undo_until", "undone_at")
    list_filter = ("reason",)
    fields = list_display
    actions = ("undo",)

    def has_undo_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("profiles.change_merge")

    @admin.action(description="Undo this merge (within the grace period)", permissions=("undo",))
    def undo(self, request: HttpRequest, queryset: Any) -> None:
        for merge in queryset:
            try:
                profile_merge_undo(merge_id=merge.pk, actor=Actor.staff(request.user.pk))
            except MergeError as error:
                self.message_user(request, f"Merge {merge.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"Merge {merge.pk} undone.", messages.SUCCESS)
