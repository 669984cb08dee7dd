"""Reads of the profiles app that involve no personal data (the schema). Personal data is read
only through `profiles.gate`."""

from profiles.models import FieldDefinition


def person_fields() -> list[FieldDefinition]:
    """The fields a person sees in their portal and API, deprecated ones included (their values
    stay visible until retention removes them)."""
    return list(FieldDefinition.objects.filter(person_can_view=True).prefetch_related("purposes"))
