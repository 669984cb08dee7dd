from typing import Any

from allauth.account.models import EmailAddress
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User, mask_email, normalize_email

# What only a superuser changes on a login: its powers and its credentials (docs/admin.md).
SUPERUSER_ONLY = ("is_staff", "is_superuser", "user_permissions")


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm):
    """The login address is never put on the page (it is shown masked); whoever may change
    users types a new one to replace it."""

    new_email = forms.EmailField(
        label="New login e-mail",
        required=False,
        help_text="Leave empty to keep the current address (shown masked above).",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = User
        fields = ()

    def clean_new_email(self) -> str:
        email = normalize_email(self.cleaned_data.get("new_email") or "")
        if email and User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another account signs in with this address.")
        return email

    def save(self, commit: bool = True) -> Any:
        if self.cleaned_data.get("new_email"):
            self.instance.email = self.cleaned_data["new_email"]
        return super().save(commit)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("created_at",)
    list_display = ("id", "masked_email", "is_staff", "is_active", "created_at")
    list_filter = ("is_staff", "is_superuser", "is_active")
    # Exact match only ("="): staff can find a login they were given, not browse by fragments.
    search_fields = ("=email",)
    readonly_fields = ("id", "masked_email", "created_at", "updated_at", "last_login")
    fieldsets = (
        (None, {"fields": ("id", "masked_email", "new_email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        """Whoever manages staff accounts without being a superuser changes only OTHER staff
        accounts that are not superusers, and only their roles and whether they are active.
        A person's login and password are theirs: changed in the portal or through a
        rectification request, never typed in by staff (that would be signing in as them); and
        nobody raises their own powers."""
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or request.user.is_superuser:
            return True
        return obj.is_staff and not obj.is_superuser and obj.pk != request.user.pk

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        fixed = tuple(super().get_readonly_fields(request, obj))
        return fixed if request.user.is_superuser else (*fixed, *SUPERUSER_ONLY)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """A new login address replaces allauth's address rows with one unverified row: the old
        address must stop receiving the account's mail (resets included), and the new one is
        verified by its owner before it signs in (ACCOUNT_EMAIL_VERIFICATION)."""
        super().save_model(request, obj, form, change)
        if change and form.cleaned_data.get("new_email"):
            EmailAddress.objects.filter(user=obj).delete()
            EmailAddress.objects.create(user=obj, email=obj.email, primary=True, verified=False)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """The superuser's alone (see `has_change_permission`), and the page names the login by
        id: Django's own puts the address in its title and a hidden input."""
        if not request.user.is_superuser:
            raise PermissionDenied
        response = super().user_change_password(request, id, form_url)
        if isinstance(response, TemplateResponse) and response.context_data:
            user = response.context_data["original"]
            response.context_data["title"] = f"Change password: user {user.pk}"
            response.context_data["original"] = _ById(user)
        return response

    @admin.display(description="email")
    def masked_email(self, obj: User) -> str:
        return mask_email(obj.email)

    def get_fieldsets(self, request: Any, obj: User | None = None) -> Any:
        """Only a superuser gets the fields to type a new address in or reach the password."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in ("new_email", "password")]})
            for name, options in fieldsets
        ]


class _ById:
    """A login as the password page prints it: by id, never by address."""

    def __init__(self, user: User) -> None:
        self.pk = user.pk
        self._meta = user._meta

    def __str__(self) -> str:
        return str(self.pk)

    def get_username(self) -> str:
        return str(self.pk)
