"""The forms of a person's page and of the search for a person."""

import re
from typing import Any

from django import forms
from django.core.validators import validate_email

REASON_MIN = 10
REASON_MAX = 500  # kept in the audit entry's details: staff text, not a document
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,24}$")
# What looks like an address or a phone number inside a reason: a ticket number is shorter.
_ADDRESS_IN_TEXT = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_NUMBER_IN_TEXT = re.compile(r"\+?\d[\d ()./-]{7,}\d")


class RevealForm(forms.Form):
    """Which of the person's fields to reveal, and why (the reason goes into the audit entry)."""

    chosen = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, label="Fields to reveal", error_messages={"required": "Choose a field."}
    )
    reason = forms.CharField(
        label="Reason",
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=(
            f"Why you need to see these values ({REASON_MIN} to {REASON_MAX} characters, e.g. the ticket you are "
            "answering). Recorded in the audit log; write no personal data here."
        ),
    )

    def clean_reason(self) -> str:
        """The reason is kept with the entry: an e-mail address or a phone number in it would
        be personal data in the audit log."""
        reason = self.cleaned_data["reason"]
        if _ADDRESS_IN_TEXT.search(reason) or _NUMBER_IN_TEXT.search(reason):
            raise forms.ValidationError("Write no e-mail address or phone number here: name the ticket instead.")
        return reason

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["chosen"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = choices


class FindForm(forms.Form):
    """An exact e-mail address or phone number: never a fragment (no browsing by substrings)."""

    query = forms.CharField(
        label="E-mail address or phone number",
        max_length=254,
        help_text="The whole address or number. It is not kept: the audit log records that a search was made.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 40}),
    )

    def clean_query(self) -> tuple[str, str]:
        """("email" | "phone", the value)."""
        query = self.cleaned_data["query"].strip()
        if "@" in query:
            try:
                validate_email(query)
            except forms.ValidationError:
                raise forms.ValidationError("Enter a whole e-mail address.") from None
            return "email", query
        if _PHONE.fullmatch(query):
            return "phone", query
        raise forms.ValidationError("Enter a whole e-mail address or a phone number.")
