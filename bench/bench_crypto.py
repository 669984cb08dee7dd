"""The field layer against raw `cryptography` AES-GCM for the same work, and KEK rotation."""

import gc
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection
from django.test import override_settings

from bench.harness import Figure
from vault import crypto
from vault.fields import seal, unseal_many
from vault.keys import get_provider, new_key_set, write_key_file
from vault.models import DataClass, DataKey

FIELDS = 10
ROUNDS = 3000


def _temporary_keys() -> override_settings:
    path = Path(tempfile.mkdtemp()) / "bench-keys.json"
    write_key_file(path, new_key_set(), overwrite=False)
    return override_settings(VAULT_KEKS="", VAULT_INDEX_KEY="", VAULT_KEKS_FILE=str(path))


def _best_of(runs: int, fn) -> float:
    return min(fn() for _ in range(runs))


def bench_field_layer_vs_raw_aesgcm() -> list[Figure]:
    """Ten 20-byte values of one subject: one DEK unwrap plus ten decrypts, per read."""
    from tests.vault.sealed_model import SealedThing

    with _temporary_keys():
        with connection.schema_editor() as editor:
            editor.create_model(SealedThing)
        try:
            return _measure_field_layer(SealedThing)
        finally:
            DataKey.objects.all().delete()
            with connection.schema_editor() as editor:
                editor.delete_model(SealedThing)


def _measure_field_layer(model) -> list[Figure]:
    subject = uuid.uuid4()
    rows = []
    with crypto.key_scope():
        for i in range(FIELDS):
            row = model(subject_id=subject)
            seal(row, "value", f"value number {i:04d}....")
            rows.append(row)
    model.objects.bulk_create(rows)
    rows = list(model.objects.filter(subject_id=subject))

    def rounds(work) -> float:
        """Mean seconds of `work()` per round. Every round first fetches the subject's wrapped key
        (untimed), as a request does: the timed work then starts from the same cache state."""
        elapsed = 0.0
        for _ in range(ROUNDS):
            with crypto.key_scope():
                crypto.data_keys_prefetch([subject], DataClass.PROFILE)
                start = time.perf_counter()
                work()
                elapsed += time.perf_counter() - start
        return elapsed / ROUNDS

    def vault_read() -> None:
        unseal_many(rows, "value", purpose="bench")

    # Bare cryptography calls: unwrap one DEK, decrypt ten values with a constant AD.
    kek = AESGCM(AESGCM.generate_key(bit_length=256))
    wrap_nonce = os.urandom(12)
    dek_bytes = AESGCM.generate_key(bit_length=256)
    wrapped = kek.encrypt(wrap_nonce, dek_bytes, b"ad")
    dek = AESGCM(dek_bytes)
    values = []
    for i in range(FIELDS):
        nonce = os.urandom(12)
        values.append((nonce, dek.encrypt(nonce, f"value number {i:04d}....".encode(), b"context")))

    def raw_read() -> None:
        key = AESGCM(kek.decrypt(wrap_nonce, wrapped, b"ad"))
        for nonce, ciphertext in values:
            key.decrypt(nonce, ciphertext, b"context")

    # The same work as the vault, written by hand with bare calls: the DEK's associated data is
    # built from the subject, each value's from its row and subject, the envelope is parsed and
    # the plaintext decoded. This is the floor for any implementation that binds ciphertexts.
    prefix = crypto.associated_data("vault-value/1", "vault.sealedthing.value")
    subject_part = crypto.associated_data(subject.bytes)
    envelopes = []
    for i, row in enumerate(rows):
        nonce = os.urandom(12)
        ad = prefix + crypto.associated_data(row.pk.bytes) + subject_part
        envelopes.append((row, b"\x01\x00\x00\x00\x01" + nonce + dek.encrypt(nonce, f"v{i}".encode(), ad)))
    dek_ad = crypto.associated_data("vault-dek/1", subject.bytes, "profile", (1).to_bytes(4)) + b"k1"
    same_nonce = os.urandom(12)  # a nonce of its own: never reuse one under the same key
    wrapped_with_ad = kek.encrypt(same_nonce, dek_bytes, dek_ad)

    def same_work_read() -> None:
        ad = crypto.associated_data("vault-dek/1", subject.bytes, "profile", (1).to_bytes(4)) + b"k1"
        key = AESGCM(kek.decrypt(same_nonce, wrapped_with_ad, ad))
        suffix = crypto.associated_data(subject.bytes)
        for row, envelope in envelopes:
            ad = prefix + crypto.associated_data(row.pk.bytes) + suffix
            key.decrypt(envelope[5:17], envelope[17:], ad).decode()

    def vault_write() -> float:
        with crypto.key_scope():
            seal(rows[0], "value", "warm the key")
            start = time.perf_counter()
            for _ in range(ROUNDS):
                for row in rows:
                    seal(row, "value", "value number 0000....")
            return (time.perf_counter() - start) / ROUNDS

    def raw_write() -> float:
        start = time.perf_counter()
        for _ in range(ROUNDS):
            for _ in rows:
                nonce = os.urandom(12)
                dek.encrypt(nonce, b"value number 0000....", b"context")
        return (time.perf_counter() - start) / ROUNDS

    vault_r, raw_r, same_r = (
        _best_of(5, lambda work=work: rounds(work)) for work in (vault_read, raw_read, same_work_read)
    )
    vault_w, raw_w = _best_of(5, vault_write), _best_of(5, raw_write)
    return [
        Figure("read 10 fields: field layer", vault_r * 1e6, "us"),
        Figure("read 10 fields: raw AESGCM", raw_r * 1e6, "us"),
        Figure("read 10 fields: same work by hand", same_r * 1e6, "us"),
        Figure("read ratio field layer / same work by hand", vault_r / same_r, "x", at_most=1.5),
        Figure("read ratio field layer / bare AESGCM", vault_r / raw_r, "x"),
        Figure("decrypt throughput (field layer)", FIELDS / vault_r, "values/s"),
        Figure("write 10 fields: field layer", vault_w * 1e6, "us"),
        Figure("write 10 fields: raw AESGCM", raw_w * 1e6, "us"),
        Figure("write ratio field layer / raw", vault_w / raw_w, "x"),
        Figure("encrypt throughput (field layer)", FIELDS / vault_w, "values/s"),
    ]


def bench_kek_rotation(keys: int = 100_000) -> list[Figure]:
    """`vault_keys rotate`'s rewrap over 100,000 data keys."""
    with _temporary_keys():
        provider = get_provider()
        rows = []
        for _ in range(keys):
            subject = uuid.uuid4()
            kek_id, wrapped = provider.wrap(
                os.urandom(32), associated_data=crypto.dek_associated_data(subject, DataClass.PROFILE, 1)
            )
            rows.append(DataKey(subject_id=subject, data_class=DataClass.PROFILE, kek_id=kek_id, wrapped=wrapped))
        DataKey.objects.bulk_create(rows, batch_size=5000)
        del rows  # the command holds no 100,000 model instances: neither should its measurement
        gc.collect()
        provider.add_kek()  # type: ignore[attr-defined]
        start = time.perf_counter()
        done = crypto.data_keys_rewrap(batch_size=5000)
        elapsed = time.perf_counter() - start
        assert done == keys, (done, keys)
        assert crypto.data_keys_by_kek() == {provider.active_kek_id(): keys}, json.dumps(crypto.data_keys_by_kek())
        DataKey.objects.all().delete()
    return [
        Figure(f"rewrap {keys:,} data keys", elapsed, "s"),
        Figure("rewrap rate", keys / elapsed, "keys/s", at_least=20_000),
    ]
