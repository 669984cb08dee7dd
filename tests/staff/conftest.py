import pytest
from django.contrib.auth.models import Group

from staff.roles import ROLES
from tests.factories import UserFactory


@pytest.fixture
def member_of(db):
    """`member_of("Privacy officer")`: a staff member holding that role only (and the suite's
    TOTP authenticator, so a `force_login` session counts as MFA-verified)."""

    def make(role: str):
        assert role in ROLES, role
        user = UserFactory.create(staff=True, email=f"{role.lower().replace(' ', '-')}@staff.example")
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


def admin_form_data(page) -> dict:
    """What the browser would post back from an admin change page as rendered (`page`: the GET
    response): the main form's values and every inline's management and row fields."""
    from django import forms

    def fields(form) -> dict:
        data: dict = {}
        for bound in form:
            value = bound.value()
            if isinstance(bound.field, forms.BooleanField):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(bound.field, forms.ModelMultipleChoiceField):
                data[bound.html_name] = [str(getattr(item, "pk", item)) for item in value or []]
            elif value is not None:
                data[bound.html_name] = value  # already as the widget shows it
            if bound.field.show_hidden_initial and value is not None:  # fields with a callable default
                data[bound.html_initial_name] = value
        return data

    data = fields(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        data |= fields(inline.formset.management_form)
        for form in inline.formset.forms:
            data |= fields(form)
    return data


def hidden_inputs(html: str) -> list[tuple[str, str]]:
    """The hidden inputs of a confirmation page, as (name, value), in order (the csrf token too)."""
    import html as html_module
    import re

    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return [(name, html_module.unescape(value)) for name, value in found]


def as_post(pairs: list[tuple[str, str]]) -> dict:
    data: dict = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data
