"""Staff admin for the profile schema and the kinds of documents and events.

Field definitions are saved through the services, so the admin and the staff API version and
audit changes alike. Values, documents and events are not shown here: they are ciphertext, and
reading them is a gated, audited reveal (the staff-admin issue).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from consent.admin import ReadOnlyAdmin
from profiles.errors import InvalidDefinition, MergeError
from profiles.gate import Actor
from profiles.models import FieldDefinition, FieldDefinitionVersion, Merge, RecordKind
from profiles.services import (
    DEFINITION_ATTRS,
    definition_check,
    field_definition_create,
    field_definition_deprecate,
    field_definition_update,
    profile_merge_undo,
)


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

    @admin.action(description="Deprecate (no new values; stored ones live out their retention)")
    def deprecate(self, request: HttpRequest, queryset: Any) -> None:
        for definition in queryset:
            field_definition_deprecate(key=definition.key, actor=Actor.staff(request.user.pk))


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
