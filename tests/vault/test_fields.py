"""The field layer: values go in sealed and come out only through a named-purpose decrypt."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction

from vault.crypto import DecryptionFailed, SubjectErased, key_scope, subject_shred
from vault.fields import Sealed, seal, unseal

pytestmark = pytest.mark.django_db


def raw_value_column(row) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT value FROM test_sealed_thing WHERE id = %s",
            [row._meta.pk.get_db_prep_value(row.pk, connection)],
        )
        return bytes(cursor.fetchone()[0])


@pytest.mark.parametrize(
    "value",
    [
        "",
        0,
        False,
        True,
        0.0,
        "Ada Lovelace",
        "Zoë 😀",
        42,
        Decimal("9.99"),
        datetime.date(1815, 12, 10),
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        [1, "two"],
        {"size": "M"},
        b"\x00\xff",
    ],
)
def test_values_round_trip_with_their_type(thing, value):
    row = thing(value)
    back = unseal(row, "value", purpose="test")
    assert back == value
    assert type(back) is type(value), "'', 0 and False must not turn into NULL or another type"


def test_none_is_stored_as_null(thing):
    row = thing(None)
    assert row.value is None
    assert unseal(row, "value", purpose="test") is None


def test_plaintext_is_not_in_the_database(thing):
    row = thing("Ada Lovelace")
    stored = raw_value_column(row)
    assert b"Lovelace" not in stored
    assert stored[0] == 1, "format byte"


def test_the_attribute_never_shows_plaintext(thing):
    row = thing("Ada Lovelace")
    assert isinstance(row.value, Sealed)
    assert "Ada" not in repr(row.value) and "Ada" not in str(row.value)


def test_assigning_plaintext_cannot_be_saved(sealed_table):
    row = sealed_table(subject_id=uuid.uuid4())
    row.value = "Ada Lovelace"
    with pytest.raises(TypeError, match="holds ciphertext"), transaction.atomic():
        row.save()
    assert not sealed_table.objects.exists()


def test_decrypting_needs_a_purpose(thing):
    with pytest.raises(ValueError, match="purpose"):
        unseal(thing("x"), "value", purpose="")


def test_ciphertext_moved_to_another_row_fails(thing):
    subject = uuid.uuid4()
    a, b = thing("secret A", subject_id=subject), thing("secret B", subject_id=subject)
    b.value = a.value
    with pytest.raises(DecryptionFailed):
        unseal(b, "value", purpose="test")


def test_ciphertext_moved_to_another_field_fails(thing):
    row = thing("secret")
    row.other = row.value
    with pytest.raises(DecryptionFailed):
        unseal(row, "other", purpose="test")


def test_ciphertext_moved_to_another_subject_fails(thing, sealed_table):
    row = thing("secret")
    row.subject_id = uuid.uuid4()
    seal(row, "other", "make the new subject have a key")
    with pytest.raises(DecryptionFailed):
        unseal(row, "value", purpose="test")


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_a_tampered_byte_fails(thing, position):
    row = thing("secret")
    tampered = bytearray(row.value.ciphertext)
    tampered[position] ^= 0x01
    row.value = Sealed(bytes(tampered))
    with pytest.raises(DecryptionFailed):
        unseal(row, "value", purpose="test")


def test_reads_after_shredding_raise_subject_erased(thing, sealed_table):
    subject = uuid.uuid4()
    row = thing("Ada", subject_id=subject)
    with key_scope():
        assert unseal(row, "value", purpose="test") == "Ada"
        assert subject_shred(subject) == 1
        with pytest.raises(SubjectErased):
            unseal(row, "value", purpose="test")
    with pytest.raises(SubjectErased):
        unseal(sealed_table.objects.get(pk=row.pk), "value", purpose="test")
    fresh = sealed_table(subject_id=subject)
    with pytest.raises(SubjectErased):
        seal(fresh, "value", "no new key for an erased person")


def test_one_unwrap_per_subject_inside_a_key_scope(thing, django_assert_num_queries):
    subject = uuid.uuid4()
    rows = [thing(f"value {i}", subject_id=subject) for i in range(5)]
    with key_scope(), django_assert_num_queries(1):
        assert [unseal(row, "value", purpose="test") for row in rows] == [f"value {i}" for i in range(5)]


def test_bytes_cannot_be_written_as_if_they_were_ciphertext(sealed_table):
    row = sealed_table(subject_id=uuid.uuid4())
    row.value = b"Ada Lovelace"
    with pytest.raises(TypeError), transaction.atomic():
        row.save()
    assert not sealed_table.objects.exists()


def test_ids_given_as_text_bind_the_same_as_uuids(sealed_table):
    subject, pk = uuid.uuid4(), uuid.uuid4()
    row = sealed_table(id=str(pk), subject_id=str(subject))
    seal(row, "value", "Ada")
    row.save()
    assert unseal(sealed_table.objects.get(pk=pk), "value", purpose="test") == "Ada"


def test_serialized_rows_keep_their_ciphertext(thing, sealed_table):
    from django.core import serializers

    secret = "Ada Lovelace, born 10 December 1815"
    row = thing(secret)
    dumped = serializers.serialize("json", [row])
    assert secret not in dumped and "Lovelace" not in dumped
    restored = next(serializers.deserialize("json", dumped)).object
    assert restored.value == row.value
    assert unseal(restored, "value", purpose="test") == secret


def test_the_subject_is_bound_even_under_the_same_data_key(thing):
    """A value re-labelled to another subject fails even if that subject had the same key."""
    from vault.crypto import dek_associated_data
    from vault.keys import get_provider
    from vault.models import DataKey

    row = thing("Ada")
    original = DataKey.objects.get(subject_id=row.subject_id)
    raw = get_provider().unwrap(
        bytes(original.wrapped),
        kek_id=original.kek_id,
        associated_data=dek_associated_data(original.subject_id, original.data_class, 1),
    )
    other = uuid.uuid4()
    kek_id, wrapped = get_provider().wrap(raw, associated_data=dek_associated_data(other, original.data_class, 1))
    DataKey.objects.create(subject_id=other, data_class=original.data_class, kek_id=kek_id, wrapped=wrapped)
    row.subject_id = other
    with pytest.raises(DecryptionFailed):
        unseal(row, "value", purpose="test")


def test_a_wrapped_key_moved_to_another_subject_does_not_unwrap(thing):
    from vault.keys import UnwrapFailed
    from vault.models import DataKey

    a, b = thing("Ada"), thing("Grace")
    key_a = DataKey.objects.get(subject_id=a.subject_id)
    DataKey.objects.filter(subject_id=b.subject_id).update(wrapped=key_a.wrapped, kek_id=key_a.kek_id)
    with pytest.raises(UnwrapFailed):
        unseal(b, "value", purpose="test")


def test_the_model_and_field_are_bound(thing):
    """Another model reading the same table (same row id, same subject) cannot open the value."""
    from tests.vault.sealed_model import SealedThingElsewhere

    row = thing("Ada")
    elsewhere = SealedThingElsewhere.objects.get(pk=row.pk)
    assert elsewhere.value == row.value
    with pytest.raises(DecryptionFailed):
        unseal(elsewhere, "value", purpose="test")
