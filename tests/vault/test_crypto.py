"""Envelopes that belong to no subject (`encrypt_standalone`): bound to their context, and
refused, with a typed error, when damaged or moved."""

import pytest

from vault.crypto import DecryptionFailed, decrypt_standalone, encrypt_standalone
from vault.keys import UnwrapFailed


def test_a_standalone_envelope_round_trips_and_hides_its_plaintext():
    envelope = encrypt_standalone(b'{"email":"ada@example.com"}', context=b"pending/one")

    assert set(envelope) == {"kek", "key", "body"}
    assert "ada" not in repr(envelope)
    assert decrypt_standalone(envelope, context=b"pending/one") == b'{"email":"ada@example.com"}'
    assert encrypt_standalone(b"x", context=b"c")["key"] != encrypt_standalone(b"x", context=b"c")["key"]


def test_a_standalone_envelope_does_not_open_under_another_context():
    envelope = encrypt_standalone(b"secret", context=b"pending/one")

    with pytest.raises(UnwrapFailed):  # its key is bound to the context too
        decrypt_standalone(envelope, context=b"pending/two")


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: {**e, "body": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        lambda e: {**e, "body": "not base64!"},
        lambda e: {"kek": e["kek"], "key": e["key"]},
        lambda e: "not an envelope",
    ],
)
def test_a_damaged_standalone_envelope_is_a_typed_error(damage):
    envelope = encrypt_standalone(b"secret", context=b"pending/one")

    with pytest.raises(DecryptionFailed):
        decrypt_standalone(damage(envelope), context=b"pending/one")
