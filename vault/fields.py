"""`SealedField`: a model field whose value is only ever ciphertext.

The attribute holds a `Sealed` (ciphertext, opaque, prints as a length); plaintext goes in with
`seal(instance, "field", value)` and comes out only through `unseal(instance, "field",
purpose=...)`, which the access gate calls after its consent check. Assigning a plain value and
saving raises, so no code path can write plaintext by mistake. Values keep their type:
"", 0 and False come back as themselves, never as NULL.

The field is not a `BinaryField`: that class defines `get_placeholder_sql`, which turns off
Django's fast multi-row insert on PostgreSQL (DESIGN.md section 2).
"""

import base64
import datetime
import decimal
import json
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from vault import crypto


class Sealed:
    """A ciphertext as stored. Deliberately has no way to show what it hides."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: bytes):
        self.ciphertext = bytes(ciphertext)

    def __repr__(self) -> str:
        return f"<Sealed {len(self.ciphertext)} bytes>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


# --- Typed plaintext encoding: one tag byte, then the value -------------------------------------
def encode_value(value: Any) -> bytes:
    match value:
        case bool():
            return b"b1" if value else b"b0"
        case int():
            return b"i" + str(value).encode()
        case float():
            return b"f" + repr(value).encode()
        case decimal.Decimal():
            return b"D" + str(value).encode()
        case str():
            return b"s" + value.encode("utf-8")
        case datetime.datetime():
            return b"t" + value.isoformat().encode()
        case datetime.date():
            return b"d" + value.isoformat().encode()
        case bytes():
            return b"y" + value
        case list() | dict():
            return b"j" + json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"A sealed value cannot be of type {type(value).__name__}.")


def decode_value(raw: bytes) -> Any:
    if raw[0] == 0x73:  # b"s": text, by far the most common
        return raw[1:].decode("utf-8")
    tag, body = raw[:1], raw[1:]
    if tag == b"i":
        return int(body)
    if tag == b"b":
        return body == b"1"
    if tag == b"f":
        return float(body)
    if tag == b"D":
        return decimal.Decimal(body.decode())
    if tag == b"d":
        return datetime.date.fromisoformat(body.decode())
    if tag == b"t":
        return datetime.datetime.fromisoformat(body.decode())
    if tag == b"y":
        return bytes(body)
    if tag == b"j":
        return json.loads(body)
    raise crypto.DecryptionFailed("Unknown value encoding.")


class SealedField(models.Field):
    """Ciphertext under the subject's data key. `subject_field` names the model attribute that
    holds the subject's UUID; the row's primary key must be a UUID, set before sealing.

    `context_name` is bound into every ciphertext; it defaults to "app_label.model.field" and
    must stay the same for the life of the data (pass the old name after renaming a model)."""

    description = "Encrypted value"

    def __init__(self, *args: Any, subject_field: str, data_class: str, context_name: str | None = None, **kwargs: Any):
        self.subject_field = subject_field
        self.data_class = data_class
        self.context_name = context_name
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(subject_field=self.subject_field, data_class=self.data_class)
        if self.context_name is not None:
            kwargs["context_name"] = self.context_name
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        return "BinaryField"  # the column type only: bytea / BLOB

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Sealed | None:
        return None if value is None else Sealed(value)

    def to_python(self, value: Any) -> Sealed | None:
        """Ciphertext as stored, or as `value_to_string` wrote it (fixtures, dumpdata)."""
        if value is None or isinstance(value, Sealed):
            return value
        if value == "":
            return None
        if isinstance(value, str) and value.startswith(_SERIALIZED):
            return Sealed(base64.b64decode(value.removeprefix(_SERIALIZED), validate=True))
        raise TypeError(f"{self.model.__name__}.{self.name} holds ciphertext; set it with vault.fields.seal().")

    def get_prep_value(self, value: Any) -> bytes | None:
        # Only a Sealed is written: bytes could be plaintext that someone assigned by hand.
        sealed = self.to_python(value)
        if sealed is not None and (len(sealed.ciphertext) < 34 or sealed.ciphertext[0] != crypto.FORMAT_V1):
            raise TypeError(f"{self.model.__name__}.{self.name}: not a vault ciphertext.")
        return None if sealed is None else sealed.ciphertext

    def value_to_string(self, obj: models.Model) -> str:
        sealed: Sealed | None = getattr(obj, self.attname)
        return "" if sealed is None else _SERIALIZED + base64.b64encode(sealed.ciphertext).decode("ascii")

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        context_name = self.context_name or f"{cls._meta.label_lower}.{name}"
        self._context_prefix = crypto.associated_data("vault-value/1", context_name)

    def context(self, instance: models.Model) -> bytes:
        """Associated data binding a ciphertext to this model and field, row and subject."""
        pk = instance.pk
        if pk is None:
            raise ValueError(f"{self.model.__name__} needs its primary key before a value is sealed.")
        return self._context_prefix + _id_part(pk) + _id_part(self.subject_of(instance))

    def subject_of(self, instance: models.Model) -> Any:
        return getattr(instance, self.subject_field)


_SERIALIZED = "sealed:"


def _id_part(value: Any) -> bytes:
    """A row or subject id as a part of the associated data (the framing of
    `crypto.associated_data`, written out for UUIDs because this runs for every value).
    Ids are UUIDs; one given as text is read as the UUID it names, so the binding does not
    depend on whether the object came from the database or from code."""
    if type(value) is not uuid.UUID:
        value = uuid.UUID(str(value))
    return b"\x00\x10" + value.int.to_bytes(16)


def _field(instance: models.Model, name: str) -> SealedField:
    field = instance._meta.get_field(name)
    if not isinstance(field, SealedField):
        raise TypeError(f"{type(instance).__name__}.{name} is not a SealedField.")
    return field


def seal(instance: models.Model, name: str, value: Any) -> None:
    """Encrypt `value` into `instance.<name>` (None stores NULL)."""
    field = _field(instance, name)
    if value is None:
        setattr(instance, name, None)
        return
    ciphertext = crypto.encrypt(
        encode_value(value),
        subject_id=field.subject_of(instance),
        data_class=field.data_class,
        context=field.context(instance),
    )
    setattr(instance, name, Sealed(ciphertext))


def unseal(instance: models.Model, name: str, *, purpose: str) -> Any:
    """Decrypt one value. Only the access gate calls this, after checking `purpose` and consent."""
    return unseal_many([instance], name, purpose=purpose)[0]


def unseal_many(instances: Sequence[models.Model], name: str, *, purpose: str) -> list[Any]:
    """Decrypt the same field of many rows (typically one person's values) in one pass.

    The hot path of every read through the access gate, so it is written for speed: rows are
    grouped by subject and each subject's part of the associated data is encoded once."""
    if not purpose:
        raise ValueError("Every decryption names its purpose.")
    if not instances:
        return []
    field = _field(instances[0], name)
    subject_field = field.subject_field
    # Group by subject. UUIDs are compared and hashed by their `int` (a plain slot): UUID's own
    # __eq__ and __hash__ are Python code and would cost more than the decryption itself.
    groups: dict[Any, tuple[Any, list[int], list[tuple[bytes, bytes]]]] = {}
    pk_name = instances[0]._meta.pk.attname
    for position, row in enumerate(instances):
        loaded = row.__dict__  # loaded field values; deferred ones are fetched through getattr
        sealed = loaded[name] if name in loaded else getattr(row, name)
        if sealed is None:
            continue
        subject = loaded[subject_field] if subject_field in loaded else getattr(row, subject_field)
        group = groups.get(subject.int if type(subject) is uuid.UUID else subject)
        if group is None:
            group = groups[subject.int if type(subject) is uuid.UUID else subject] = (subject, [], [])
        pk = loaded.get(pk_name)
        if pk is None:
            raise ValueError(f"{type(row).__name__} needs its primary key to be read.")
        group[1].append(position)
        group[2].append((sealed.ciphertext, _id_part(pk)))
    values: list[Any] = [None] * len(instances)
    for subject, positions, items in groups.values():
        plaintexts = crypto.decrypt_for_subject(
            subject,
            items,
            data_class=field.data_class,
            context_prefix=field._context_prefix,
            context_suffix=_id_part(subject),
        )
        for position, plaintext in zip(positions, plaintexts, strict=True):
            values[position] = decode_value(plaintext)
    return values
