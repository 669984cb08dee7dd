"""allauth's admin pages, wrapped so that no list, search or page shows an e-mail address, a
provider's id for the person, a token, a session key, an authenticator's secret or an app's
client secret; and the user list, linked to each person's page and to "Find a person".

allauth registers its own admins; they are replaced here (staff comes after allauth in
INSTALLED_APPS, so its admin module is discovered last). Each list names the person by their
opaque id, linked to their page, where the rest is masked; nothing is searchable by fragments
(people are found by exact address or number on "Find a person", through the blind indexes).
"""

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.admin import SocialAppForm
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.admin import UserAdmin
from accounts.models import User, mask_email


def person_link(subject_id: Any) -> str:
    """The person's opaque id, linked to their page."""
    if subject_id is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse("admin:staff_person", args=[subject_id]), subject_id)


class _Named:
    """A row as a page prints it (title, breadcrumbs): by model and id, since its own `str` may
    be an address; every attribute is the row's."""

    def __init__(self, obj: Any) -> None:
        self.__dict__["_obj"] = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_obj"], name)

    def __str__(self) -> str:
        obj = self.__dict__["_obj"]
        return f"{obj._meta.verbose_name} {obj.pk}"


class MaskedAdmin(admin.ModelAdmin):
    """A list and pages that never print the row itself (its `str` may be an address): the
    selection checkbox, the page's title, breadcrumbs and history name it by model and id, and
    nothing is searchable. Read-only unless a subclass says otherwise."""

    search_fields = ()
    show_full_result_count = False

    def action_checkbox(self, obj: Any) -> SafeString:
        """As the admin's, labelled with the row's id instead of its `str`."""
        attrs = {"class": "action-select", "aria-label": f"Select row {obj.pk}"}
        checkbox = forms.CheckboxInput(attrs, lambda value: False)
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    @admin.display(description="person")
    def person(self, obj: Any) -> str:
        return person_link(getattr(obj, "user_id", None))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by sign-up, sign-in and the person's own pages, never typed in by staff

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def render_change_form(
        self,
        request: HttpRequest,
        context: Any,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        response = super().render_change_form(request, context, add, change, form_url, obj)
        shown = response.context_data if isinstance(response, TemplateResponse) else None
        if obj is not None and shown is not None:
            shown["original"] = named = _Named(obj)
            shown["subtitle"] = str(named)
        return response

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        response = super().history_view(request, object_id, extra_context)
        shown = response.context_data if isinstance(response, TemplateResponse) else None
        if shown is not None and shown.get("object") is not None:
            shown["object"] = named = _Named(shown["object"])
            shown["title"] = f"Change history: {named}"
        return response


class EmailAddressAdmin(MaskedAdmin):
    """Masked, and changed only in whether it is verified or primary (whoever holds
    account.change_emailaddress): the address itself is the person's to change."""

    list_display = ("id", "address", "person", "primary", "verified")
    list_filter = ("primary", "verified")
    fields = ("person", "address", "verified", "primary")
    readonly_fields = ("person", "address")
    actions = None  # allauth's "mark verified" names each address in its messages

    @admin.display(description="address")
    def address(self, obj: EmailAddress) -> str:
        return mask_email(obj.email)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the person removes an address; erasure removes them all


class SocialAccountAdmin(MaskedAdmin):
    """Provider and dates only: the provider's id for the person (`uid`) and what it sent
    (`extra_data`, kept empty anyway: sealed in accounts) are never shown."""

    list_display = ("id", "provider", "person", "date_joined", "last_login")
    list_filter = ("provider",)
    fields = ("provider", "person", "date_joined", "last_login")
    readonly_fields = fields
    actions = None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the person disconnects (which purges what the provider brought)


class SocialTokenAdmin(MaskedAdmin):
    """Which app and account a token belongs to and when it expires: never the token."""

    list_display = ("id", "app", "account_id", "expires_at")
    list_filter = ("app__provider",)
    fields = ("app", "account_id", "expires_at")
    readonly_fields = fields
    actions = None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SecretAppForm(SocialAppForm):
    """The client secret, key and settings (which may hold a private key) are write-only: the
    page shows whether they are set, and a value typed in replaces them."""

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="Write-only: leave empty to keep the current secret.",
    )
    key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 60}),
        help_text="Write-only: leave empty to keep the current key.",
    )
    settings = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Write-only (it may hold a private key): leave empty to keep the current settings.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["settings"] = None  # never rendered back into the page

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for name in ("secret", "key", "settings"):
            if cleaned.get(name) in (None, "", {}) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        cleaned["settings"] = cleaned.get("settings") or {}
        return cleaned


class SocialAppAdmin(admin.ModelAdmin):
    form = SecretAppForm
    list_display = ("name", "provider", "client_id", "secret_set")
    fields = ("provider", "provider_id", "name", "client_id", "secret", "key", "settings")

    @admin.display(description="secret", boolean=True)
    def secret_set(self, obj: SocialApp) -> bool:
        return bool(obj.secret)


class AuthenticatorAdmin(MaskedAdmin):
    """Kind and dates: never the sealed secret or codes (`data`). Staff may delete a lost one
    (the person then sets up a new one), not change it."""

    list_display = ("id", "person", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    fields = ("person", "type", "created_at", "last_used_at")
    readonly_fields = fields


class UserSessionAdmin(MaskedAdmin):
    """When and on what kind of device (accounts keeps no address and only a device summary):
    never the session key, which would let its reader sign in as the person."""

    list_display = ("id", "person", "created_at", "last_seen_at", "user_agent")
    fields = ("person", "created_at", "last_seen_at", "user_agent")
    readonly_fields = fields


class PersonUserAdmin(UserAdmin):
    """The user list: each row linked to the person's page; found by exact address or number on
    "Find a person" (a POST, so no address enters a URL), or here by exact id."""

    list_display = (*UserAdmin.list_display, "person_page")  # type: ignore[assignment]
    search_fields = ("=id",)
    change_list_template = "admin/staff/user_change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "person_page")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "fields": ["person_page", *options["fields"]]}), *rest]

    @admin.display(description="person page")
    def person_page(self, obj: User) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">Open person page</a>', reverse("admin:staff_person", args=[obj.pk]))


for model, model_admin in (
    (EmailAddress, EmailAddressAdmin),
    (SocialAccount, SocialAccountAdmin),
    (SocialToken, SocialTokenAdmin),
    (SocialApp, SocialAppAdmin),
    (Authenticator, AuthenticatorAdmin),
    (UserSession, UserSessionAdmin),
    (User, PersonUserAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
