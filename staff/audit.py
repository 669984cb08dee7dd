"""Every change staff make through the admin goes into the vault's tamper-evident audit log.

`StaffAdminSite.register` wraps every ModelAdmin in `StaffAuditMixin` (those of allauth and of
django.contrib.auth too, and any registered later), which writes one entry per addition, change
and deletion (`staff.add`, `staff.change`, `staff.delete`) and per admin action run
(`staff.action`). An entry names the staff member (actor), the object as `<app>.<model>.id_<pk>`
and the NAMES of the fields changed, never a value. An object that belongs to a person (a login,
a row with their subject id or user) is named through the person's audit pseudonym instead, so
the entry appears in their "who accessed my data" and erasure unlinks it like every other.

The admin's own LogEntry (the history pages, "Recent actions") stores `str(obj)`; third-party
models' `__str__` can be an e-mail address (allauth's EmailAddress) or an IP address (its
UserSession), so the mixin writes those entries itself, with `object_display` instead.
"""

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.options import ActionLocation
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.inspect import get_func_args

from profiles.gate import Actor
from vault.audit import audit_record
from vault.crypto import subject_is_erased

# Apps whose models' `__str__` was written for staff pages and logs (no e-mail, no value): the
# project's own, and django.contrib.auth (a group's name is a role's). Any other app's objects
# are shown as "<model> <pk>".
VETTED_STR_APPS = frozenset({"accounts", "consent", "profiles", "partners", "rights", "vault", "staff", "auth"})

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PK = re.compile(r"^[a-z0-9_]{1,40}$")
_MAX_NAME = 64  # the audit log's limit for a field name


def object_display(obj: models.Model) -> str:
    """How staff pages and the admin's log name an object without personal data."""
    if obj._meta.app_label in VETTED_STR_APPS:
        return str(obj)
    return f"{obj._meta.verbose_name} {obj.pk}"


def _pk_token(pk: Any) -> str | None:
    if isinstance(pk, uuid.UUID):
        return pk.hex
    token = str(pk).lower()
    return token if _PK.match(token) else None


def object_subject(obj: models.Model) -> uuid.UUID | None:
    """The person an object belongs to, if any: a login is the person; other rows name them by
    subject id or by a foreign key to the login."""
    user_model = get_user_model()
    if isinstance(obj, user_model):
        return obj.pk if isinstance(obj.pk, uuid.UUID) else None
    subject = getattr(obj, "subject_id", None)
    if isinstance(subject, uuid.UUID):
        return subject
    for field in obj._meta.concrete_fields:
        if field.is_relation and field.related_model is user_model:
            value = getattr(obj, field.attname)
            if isinstance(value, uuid.UUID):
                return value
    return None


def object_name(obj: models.Model) -> str:
    """The object as an audit field name: `consent.purpose.id_3`. A login's id is its person's
    subject id, which the log never holds (the entry's pseudonym names them): `accounts.user`."""
    label = obj._meta.label_lower
    if isinstance(obj, get_user_model()):
        return label
    token = _pk_token(obj.pk)
    name = f"{label}.id_{token}" if token is not None else label
    return name if len(name) <= _MAX_NAME else label


def field_names(names: Iterable[str]) -> list[str]:
    """Changed fields as the log takes them (lowercase identifiers), each once, in order."""
    kept = [name.lower() for name in names if isinstance(name, str)]
    return list(dict.fromkeys(name for name in kept if _NAME.match(name)))


def staff_change_record(*, user: Any, action: str, obj: models.Model, fields: Iterable[str] = ()) -> None:
    """One audit entry for a change a member of staff made to `obj`: the object and the names of
    the fields. Runs in the caller's transaction, so change and entry commit together."""
    subject = object_subject(obj)
    if subject is not None and subject_is_erased(subject):
        subject = None  # no pseudonym is made for an erased person again; the id stays out too
    audit_record(
        **Actor.staff(user.pk).audit(),
        action=action,
        fields=[object_name(obj), *field_names(fields)],
        subject_id=subject,
    )


def _formset_objects(formsets: Iterable[Any] | None) -> list[Any]:
    """The inline objects in the order Django's change message lists them."""
    found: list[Any] = []
    for formset in formsets or ():
        found.extend(formset.new_objects)
        found.extend(obj for obj, _ in formset.changed_objects)
        found.extend(formset.deleted_objects)
    return found


def _changed_names(form: Any, formsets: Iterable[Any] | None) -> list[str]:
    names = list(getattr(form, "changed_data", ()))
    for formset in formsets or ():
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            names.append(formset.model._meta.model_name)
    return names


_PENDING = "_staff_audit_fields"  # set on the request between a change message and its log call
_DELETED = "_staff_deleted_display"  # set on the request between a deletion's log and its message


class _Shown:
    """The object, printed as `object_display` in the messages the admin's responses show (and
    store in the message cookie); every attribute is the object's."""

    def __init__(self, obj: models.Model) -> None:
        self.__dict__["_obj"] = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_obj"], name)

    def __str__(self) -> str:
        return object_display(self.__dict__["_obj"])


def _shown(obj: Any) -> Any:
    vetted = isinstance(obj, models.Model) and obj._meta.app_label in VETTED_STR_APPS
    return obj if vetted or not isinstance(obj, models.Model) else _Shown(obj)


class StaffAuditMixin(admin.ModelAdmin):
    """Audits every add, change, delete and action of the admin it is mixed into (the site does
    that for every registration); see the module's docstring."""

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        message = super().construct_change_message(request, form, formsets, add)
        setattr(request, _PENDING, _changed_names(form, formsets))
        # Inline objects are named in the message by str(obj): shown on the history page.
        inline = iter(_formset_objects(formsets))
        parts: list[dict[str, Any]] = message if isinstance(message, list) else []
        for part in parts:
            for detail in part.values():
                if isinstance(detail, dict) and "object" in detail:
                    shown = next(inline, None)
                    detail["object"] = object_display(shown) if shown is not None else ""
        return message

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> Any:
        return super().response_add(request, _shown(obj), post_url_continue)

    def response_change(self, request: HttpRequest, obj: Any) -> Any:
        return super().response_change(request, _shown(obj))

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> Any:
        return super().response_delete(request, getattr(request, _DELETED, obj_display), obj_id)

    def _pending_fields(self, request: HttpRequest) -> list[str]:
        names: list[str] = getattr(request, _PENDING, [])
        if hasattr(request, _PENDING):
            delattr(request, _PENDING)
        return names

    def _log(self, request: HttpRequest, objects: Iterable[models.Model], flag: int, message: Any = "") -> Any:
        """What `LogEntry.objects.log_actions` writes, naming objects by `object_display`."""
        if isinstance(message, list):
            message = json.dumps(message)
        entries = [
            LogEntry(
                user_id=cast(Any, request.user.pk),
                content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
                object_id=obj.pk,
                object_repr=object_display(obj)[:200],
                action_flag=flag,
                change_message=message,
            )
            for obj in objects
        ]
        if len(entries) == 1:
            entries[0].save()
            return entries
        return LogEntry.objects.bulk_create(entries)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        staff_change_record(user=request.user, action="staff.add", obj=obj, fields=self._pending_fields(request))
        entry: LogEntry = self._log(request, [obj], ADDITION, message)[0]
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        staff_change_record(user=request.user, action="staff.change", obj=obj, fields=self._pending_fields(request))
        entry: LogEntry = self._log(request, [obj], CHANGE, message)[0]
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        """Called once before a deletion with every object going (Django 6.1's bulk path)."""
        objects = list(queryset)
        for obj in objects:
            staff_change_record(user=request.user, action="staff.delete", obj=obj)
        if len(objects) == 1:  # the delete page's own message names it next
            setattr(request, _DELETED, object_display(objects[0]))
        return self._log(request, objects, DELETION)

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        """The actions this member of staff may run, each recording a `staff.action` entry (its
        name, the model, how many objects) once it has run.

        An action that declares no permissions is offered by Django to anyone who may see the
        list; here it needs the change permission (least privilege: an auditor must not run
        allauth's "mark verified" or a field's deprecation). Declare `permissions` to say otherwise."""
        parent = super().get_actions
        if "action_location" in get_func_args(parent):
            actions = parent(request, action_location=action_location)
        else:  # an admin still overriding the pre-6.1 signature: as Django treats it
            actions = parent(request) if action_location == ActionLocation.CHANGE_LIST else {}
        audited: dict[str, Any] = {}
        found: dict[str, Any] = dict(actions)
        for name, action in found.items():
            func = action[0] if isinstance(action, tuple) else action.func
            if not hasattr(func, "allowed_permissions") and not self.has_change_permission(request):
                continue
            if isinstance(action, tuple):
                audited[name] = (_audited(func, name), *action[1:])
            else:
                audited[name] = dataclasses.replace(action, func=_audited(func, name))
        return audited


def _audited(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    if getattr(func, "_staff_audited", False):
        return func

    @wraps(func)
    def run(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> Any:
        # Recorded once the action has run, in its transaction. An action that answers with a
        # page and no "post" (Django's delete_selected, a deprecation) only asked for
        # confirmation and changed nothing: its run is the confirmed POST.
        count = queryset.count()
        with transaction.atomic():
            result = func(modeladmin, request, queryset)
            if isinstance(result, TemplateResponse) and not request.POST.get("post"):
                return result
            action = name if _NAME.match(name) else "action"
            audit_record(
                **Actor.staff(request.user.pk).audit(),
                action="staff.action",
                fields=[modeladmin.opts.label_lower, action, f"count_{count}"],
            )
        return result

    run._staff_audited = True  # type: ignore[attr-defined]
    return run


def audited_admin(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """`admin_class` with `StaffAuditMixin` first in its bases (the class itself if it has it)."""
    if issubclass(admin_class, StaffAuditMixin):
        return admin_class
    namespace = {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__}
    return type(admin_class.__name__, (StaffAuditMixin, admin_class), namespace)


__all__ = [
    "VETTED_STR_APPS",
    "StaffAuditMixin",
    "audited_admin",
    "field_names",
    "object_display",
    "object_name",
    "object_subject",
    "staff_change_record",
]
