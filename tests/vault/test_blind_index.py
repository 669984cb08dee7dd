import datetime
import uuid

import pytest

from vault.blind_index import BlindIndex, InvalidValue, confirmed_matches
from vault.fields import seal, unseal

EMAIL = BlindIndex("sealedthing.email", kind="email", bits=32)


@pytest.mark.parametrize(
    ("index", "a", "b"),
    [
        (BlindIndex("t", "text"), "  Zoë   Smith ", "zoë smith"),
        (BlindIndex("t", "text"), "\uff21\uff22\uff23", "abc"),  # full-width letters: NFKC
        (BlindIndex("t", "text"), "STRASSE", "straße"),  # case folding, not just lower()
        (BlindIndex("e", "email"), " Ada@Example.COM ", "ada@example.com"),
        (BlindIndex("p", "phone"), "+31 6 1234 5678", "+31612345678"),
        (BlindIndex("p", "phone"), "+44 (0)20 7946 0958", "+442079460958"),
        (BlindIndex("d", "date"), datetime.date(1990, 4, 12), "1990-04-12"),
        (BlindIndex("d", "date"), datetime.datetime(1990, 4, 12, 8, 0, tzinfo=datetime.UTC), " 1990-04-12"),
    ],
)
def test_equal_after_normalization_means_equal_index(index, a, b):
    assert index.compute(a) == index.compute(b)


def test_national_phone_numbers_use_the_configured_region(settings):
    index = BlindIndex("p", "phone")
    settings.VAULT_PHONE_REGION = "NL"
    assert index.normalize("06 1234 5678") == "+31612345678"
    settings.VAULT_PHONE_REGION = ""
    with pytest.raises(InvalidValue):
        index.normalize("06 1234 5678")


@pytest.mark.parametrize(("kind", "value"), [("phone", "call me"), ("phone", "+1 2"), ("date", "12/04/1990")])
def test_unparseable_values_are_typed_errors(kind, value):
    with pytest.raises(InvalidValue):
        BlindIndex("x", kind).compute(value)


def test_truncation_keeps_the_planned_number_of_bits():
    for bits, length in ((8, 2), (16, 4), (30, 8), (32, 8), (64, 16), (256, 64)):
        value = BlindIndex("x", bits=bits).compute("ada")
        assert len(value) == length
        assert int(value, 16) % (1 << (-bits % 4)) == 0, "bits beyond the planned ones are zero"


def test_indexes_are_keyed_per_field_and_by_the_index_key(settings):
    a = BlindIndex("profile.first_name").compute("ada")
    assert BlindIndex("profile.last_name").compute("ada") != a, "per-field keys: no cross-field linking"
    settings.VAULT_INDEX_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
    assert BlindIndex("profile.first_name").compute("ada") != a, "the index depends on the secret root key"


def test_bad_index_definitions_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        BlindIndex("x", kind="colour")
    with pytest.raises(ValueError, match="bits"):
        BlindIndex("x", bits=4)


@pytest.mark.slow
@pytest.mark.django_db
def test_lookup_confirms_candidates_by_decryption(sealed_table):
    tiny = BlindIndex("sealedthing.email.tiny", kind="email", bits=8)  # 256 buckets: collisions happen
    rows, buckets = [], {}
    for i in range(600):
        row = sealed_table(subject_id=uuid.uuid4(), email_index="")
        address = f"person{i}@example.com"
        seal(row, "value", address)
        row.email_index = tiny.compute(address)
        buckets.setdefault(row.email_index, []).append(address)
        rows.append(row)
    sealed_table.objects.bulk_create(rows)
    # 600 addresses in 256 buckets: some bucket holds several (pigeonhole). Look one of them up.
    target = next(addresses[0] for addresses in buckets.values() if len(addresses) > 1)

    candidates = sealed_table.objects.filter(email_index=tiny.compute(target.upper()))
    assert candidates.count() > 1, "with 8 bits, other addresses share the bucket"
    matches = confirmed_matches(candidates, tiny, target.upper(), read=lambda row: unseal(row, "value", purpose="test"))
    assert [unseal(m, "value", purpose="test") for m in matches] == [target]
