"""Typed validation of profile values: each field type's rules, in one place.

`value_clean` turns what a form or the API sent into the value stored (and returned): a phone
becomes E.164, a date a `date`, a decimal a `Decimal`. Errors name the field, never the value.
A few fields have a rule of their own on top of their type's (`_FIELD_RULES`): the date of birth
follows consent's one rule for it, which sign-up and the consent API apply too.
"""

import datetime
import decimal
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django_countries import countries

from consent.errors import InvalidBirthDate
from consent.services import birth_date_check
from profiles.errors import InvalidValue, ValueTooLong
from profiles.models import FieldDefinition, FieldType
from vault import blind_index

_email = EmailValidator()
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,19}")
_url = URLValidator(schemes=["http", "https"])


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue("Expected text.")
    value = value.strip()
    if not value:
        raise InvalidValue("Empty: to remove a value, send null.")
    return value


def _email_address(value: Any) -> str:
    value = _text(value)
    try:
        _email(value)
    except ValidationError:
        raise InvalidValue("Not an email address.") from None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def _phone(value: Any) -> str:
    try:
        return blind_index.normalize_phone(_text(value))
    except blind_index.InvalidValue:
        raise InvalidValue("Not a phone number (give it with its country code, such as +31 6 1234 5678).") from None


def _date(value: Any) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    try:
        return datetime.date.fromisoformat(_text(value))
    except ValueError:
        raise InvalidValue("Not a date in the form YYYY-MM-DD.") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue("Expected a whole number.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value)
    raise InvalidValue("Expected a whole number.")


def _decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | decimal.Decimal):
        raise InvalidValue("Expected a number.")
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise InvalidValue("Expected a number.") from None
    if not number.is_finite() or len(number.as_tuple().digits) > 30:
        raise InvalidValue("Expected a finite number of at most 30 digits.")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise InvalidValue("Expected true or false.")


def _country(value: Any) -> str:
    code = _text(value).upper()
    if code not in countries:
        raise InvalidValue("Not an ISO 3166 country code such as DE or FR.")
    return code


def _web_address(value: Any) -> str:
    value = _text(value)
    try:
        _url(value)
    except ValidationError:
        raise InvalidValue("Not a web address (http or https).") from None
    return value


def _document(value: Any) -> dict[str, Any] | list[Any]:
    if not isinstance(value, dict | list):
        raise InvalidValue("Expected a JSON object or array.")
    return value


_CLEANERS: dict[str, Callable[[Any], Any]] = {
    FieldType.TEXT: _text,
    FieldType.EMAIL: _email_address,
    FieldType.PHONE: _phone,
    FieldType.DATE: _date,
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.COUNTRY: _country,
    FieldType.URL: _web_address,
    FieldType.JSON: _document,
}


def _birth_date(value: Any) -> Any:
    if isinstance(value, datetime.date):  # a field of another type keeps its own rules only
        try:
            birth_date_check(value)
        except InvalidBirthDate as error:
            raise InvalidValue(error.message) from None
    return value


# Rules of particular fields, applied after their type's, by field key.
_FIELD_RULES: dict[str, Callable[[Any], Any]] = {"birth_date": _birth_date}

# How each type is normalized for its blind index (vault.blind_index kinds).
INDEX_KINDS = {FieldType.EMAIL: "email", FieldType.PHONE: "phone", FieldType.DATE: "date"}


def value_clean(definition: FieldDefinition, value: Any) -> Any:
    """The value to store for `definition`, or `InvalidValue`/`ValueTooLong` naming the field."""
    try:
        cleaned = _clean(definition, value)
        if rule := _FIELD_RULES.get(definition.key):
            cleaned = rule(cleaned)
        _check_size(definition, cleaned)
    except (InvalidValue, ValueTooLong) as error:
        raise type(error)(error.message, param=definition.key) from None
    return cleaned


def _clean(definition: FieldDefinition, value: Any) -> Any:
    kind = definition.field_type
    if kind == FieldType.CHOICE:
        if not isinstance(value, str) or value not in definition.choices:
            raise InvalidValue("Not one of the allowed choices.")
        return value
    if kind == FieldType.MULTI_CHOICE:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidValue("Expected a list of choices.")
        if any(item not in definition.choices for item in value):
            raise InvalidValue("Not one of the allowed choices.")
        if len(set(value)) != len(value):
            raise InvalidValue("A choice is listed twice.")
        return value
    return _CLEANERS[kind](value)


def _check_size(definition: FieldDefinition, value: Any) -> None:
    if isinstance(value, str) and definition.max_length and len(value) > definition.max_length:
        raise ValueTooLong(f"At most {definition.max_length} characters.")
    size = len(json.dumps(value, default=str, ensure_ascii=False).encode()) if isinstance(value, dict | list) else 0
    size = size or len(str(value).encode())
    if size > settings.VAULT_PROFILE_MAX_VALUE_BYTES:
        raise ValueTooLong(f"At most {settings.VAULT_PROFILE_MAX_VALUE_BYTES} bytes.")


def document_clean(value: Any, *, param: str) -> dict[str, Any] | list[Any]:
    """A document or event body: a JSON object or array within the vault's maximum size."""
    if not isinstance(value, dict | list):
        raise InvalidValue("Expected a JSON object or array.", param=param)
    if len(json.dumps(value, ensure_ascii=False).encode()) > settings.VAULT_PROFILE_MAX_DOCUMENT_BYTES:
        raise ValueTooLong(f"At most {settings.VAULT_PROFILE_MAX_DOCUMENT_BYTES} bytes.", param=param)
    return value
