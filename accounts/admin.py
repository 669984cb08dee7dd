from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts.models import User, mask_email, normalize_email


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

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        """Staff who manage accounts give roles (groups); superuser status and one-off
        permissions are for the superuser alone, or changing users would be every power."""
        fixed = tuple(super().get_readonly_fields(request, obj))
        return fixed if request.user.is_superuser else (*fixed, "is_superuser", "user_permissions")

    @admin.display(description="email")
    def masked_email(self, obj: User) -> str:
        return mask_email(obj.email)

    def get_fieldsets(self, request: Any, obj: User | None = None) -> Any:
        """Without the right to change users, no field to type a new address in."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "new_email"]})
            for name, options in fieldsets
        ]
