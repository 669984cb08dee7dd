"""What a browser would post back from an admin add or change page left as it is."""

from typing import Any


def _put(data: dict[str, Any], form: Any) -> None:
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        keys = [form.add_prefix(name)]
        if field.show_hidden_initial:  # rendered beside fields with a callable default
            keys.append(form.add_initial_prefix(name))
        if value is None or value is False:
            continue
        for key in keys:
            if value is True:
                data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(getattr(item, "pk", item)) for item in value]
            else:
                data[key] = value


def admin_form_data(response: Any) -> dict[str, Any]:
    """The page's form and inline formsets, with their current values."""
    data: dict[str, Any] = {}
    _put(data, response.context["adminform"].form)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        _put(data, formset.management_form)
        for form in formset.forms:
            _put(data, form)
    return data
