"""`crypto.data_keys_create_many`: first data keys for many new subjects at once."""

import uuid

import pytest
from django.db import connection

from vault import crypto
from vault.fields import seal, unseal
from vault.keys import VaultError, get_provider
from vault.models import DataClass, DataKey

PROFILE = DataClass.PROFILE

pytestmark = pytest.mark.django_db


def _sealed_rows(model, subjects, value="Ada"):
    rows = []
    for subject in subjects:
        row = model(subject_id=subject)
        seal(row, "value", f"{value} {subject}")
        rows.append(row)
    return rows


def test_values_sealed_after_bulk_creation_decrypt_through_the_normal_path(sealed_table):
    subjects = [uuid.uuid4() for _ in range(20)]
    with crypto.key_scope():
        assert crypto.data_keys_create_many(subjects, PROFILE) == 20
        sealed_table.objects.bulk_create(_sealed_rows(sealed_table, subjects))
    # A fresh scope: every key is read back from the database and unwrapped by the provider.
    stored = list(sealed_table.objects.filter(subject_id__in=subjects))
    assert len(stored) == 20
    assert {unseal(row, "value", purpose="test") for row in stored} == {f"Ada {s}" for s in subjects}
    keys = DataKey.objects.filter(subject_id__in=subjects)
    assert {(k.data_class, k.version, k.kek_id) for k in keys} == {(PROFILE, 1, get_provider().active_kek_id())}


def test_the_wrapping_binds_subject_class_and_version(sealed_table):
    """The wrapped key is `_create_key`'s: moved to another subject or class, it does not unwrap."""
    subject, other = uuid.uuid4(), uuid.uuid4()
    with crypto.key_scope():
        crypto.data_keys_create_many([subject], PROFILE)
    row = DataKey.objects.get(subject_id=subject)
    provider = get_provider()
    ad = crypto.dek_associated_data(subject, PROFILE, 1)
    assert len(provider.unwrap(bytes(row.wrapped), kek_id=row.kek_id, associated_data=ad)) == 32
    for wrong in (
        crypto.dek_associated_data(other, PROFILE, 1),
        crypto.dek_associated_data(subject, DataClass.EVENTS, 1),
        crypto.dek_associated_data(subject, PROFILE, 2),
    ):
        with pytest.raises(VaultError):
            provider.unwrap(bytes(row.wrapped), kek_id=row.kek_id, associated_data=wrong)


def test_existing_keys_are_kept_and_erased_subjects_get_none(sealed_table):
    known, new, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    (before,) = _sealed_rows(sealed_table, [known], "earlier")
    before.save()
    original = DataKey.objects.get(subject_id=known)
    _sealed_rows(sealed_table, [erased])[0].save()
    crypto.subject_shred(erased)

    with crypto.key_scope():
        assert crypto.data_keys_create_many([known, new, erased, new], PROFILE) == 1
        (after,) = _sealed_rows(sealed_table, [known], "later")  # under the key it already had
        after.save()
        with pytest.raises(crypto.SubjectErased):
            _sealed_rows(sealed_table, [erased])

    kept = DataKey.objects.get(subject_id=known)
    assert (kept.pk, bytes(kept.wrapped)) == (original.pk, bytes(original.wrapped))
    assert not DataKey.objects.filter(subject_id=erased).exists()
    assert DataKey.objects.filter(subject_id=new).count() == 1
    rows = sealed_table.objects.filter(subject_id=known).order_by("pk")
    assert {unseal(row, "value", purpose="test") for row in rows} == {f"earlier {known}", f"later {known}"}


def test_a_class_is_keyed_apart_from_the_others():
    subject = uuid.uuid4()
    with crypto.key_scope():
        assert crypto.data_keys_create_many([subject], PROFILE) == 1
        assert crypto.data_keys_create_many([subject], DataClass.EVENTS) == 1
        assert crypto.data_keys_create_many([subject], PROFILE) == 0
    assert set(DataKey.objects.filter(subject_id=subject).values_list("data_class", flat=True)) == {
        PROFILE,
        DataClass.EVENTS,
    }


@pytest.mark.parametrize("people", [3, 300])
def test_a_fixed_number_of_queries_and_none_for_sealing(sealed_table, django_assert_num_queries, people):
    subjects = [uuid.uuid4() for _ in range(people)]
    with crypto.key_scope():
        # Savepoint, lookups of existing and erased keys, the insert, release (and on PostgreSQL
        # the lock of the erased-subjects table), whatever the number of people.
        expected = 6 if connection.vendor == "postgresql" else 5
        with django_assert_num_queries(expected):
            crypto.data_keys_create_many(subjects, PROFILE)
        with django_assert_num_queries(0):
            rows = _sealed_rows(sealed_table, subjects)
    assert len(rows) == people


def test_batches_cover_every_subject():
    subjects = [uuid.uuid4() for _ in range(7)]
    with crypto.key_scope():
        assert crypto.data_keys_create_many(subjects, PROFILE, batch_size=3) == 7
    assert DataKey.objects.filter(subject_id__in=subjects).count() == 7


def test_it_needs_a_key_scope():
    with pytest.raises(RuntimeError, match="key_scope"):
        crypto.data_keys_create_many([uuid.uuid4()], PROFILE)
    assert not DataKey.objects.exists()


def test_keys_for_write_many_readies_held_and_new_keys_and_leaves_out_the_erased(
    sealed_table, django_assert_num_queries
):
    """`data_keys_for_write_many`: the newest key of those who hold one, a first key for the
    others, none for an erased subject; then sealing runs no query."""
    held, new, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    (before,) = _sealed_rows(sealed_table, [held], "earlier")
    before.save()
    crypto.subject_shred(erased)
    with crypto.key_scope():
        assert crypto.data_keys_for_write_many([held, new, erased, held], PROFILE) == {held, new}
        with django_assert_num_queries(0):
            rows = _sealed_rows(sealed_table, [held, new])
        sealed_table.objects.bulk_create(rows)
        with django_assert_num_queries(0):  # cached in the scope
            assert crypto.data_keys_for_write_many([held, new], PROFILE) == {held, new}
    stored = {row.subject_id: unseal(row, "value", purpose="test") for row in sealed_table.objects.all()}
    assert stored[new] == f"Ada {new}"
    assert DataKey.objects.filter(subject_id=held).count() == 1
    assert not DataKey.objects.filter(subject_id=erased).exists()
