"""Key provider and the `vault_keys` command: init, rotate, status, retire; bad key material."""

import base64
import json
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from vault import keys
from vault.audit import audit_verify
from vault.crypto import data_keys_by_kek
from vault.fields import unseal
from vault.keys import LocalKeyProvider, UnknownKek, UnwrapFailed, get_provider, new_key_set
from vault.models import AuditEntry, AuditPseudonym

B64_32 = base64.b64encode(b"k" * 32).decode()


def provider_from(data) -> LocalKeyProvider:
    return LocalKeyProvider(key_set_json=data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: {**d, "format": "other"}, '"format": "vault-keys/1"'),
        (lambda d: {**d, "keks": {}}, "has no KEKs"),
        (lambda d: {**d, "active_kek": "nope"}, "active_kek must name one of its keks"),
        (lambda d: {**d, "keks": {d["active_kek"]: base64.b64encode(b"short").decode()}}, "must be 32 bytes, got 5"),
        (lambda d: {**d, "keks": {d["active_kek"]: "***"}}, "is not valid base64"),
        (lambda d: {k: v for k, v in d.items() if k != "audit_signing_key"}, "audit_signing_key must be a base64"),
        (lambda d: {k: v for k, v in d.items() if k != "index_key"}, "No blind-index key"),
        (lambda d: {k: v for k, v in d.items() if k != "receipt_signing_key"}, "receipt_signing_key must be"),
    ],
)
def test_bad_key_material_is_a_clear_configuration_error(mutate, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        provider_from(mutate(new_key_set()))


def test_missing_key_file_names_the_fix(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="vault_keys init"):
        LocalKeyProvider(path=str(tmp_path / "absent.json"))


def test_no_keys_at_all_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="VAULT_KEKS"):
        LocalKeyProvider()


def test_keys_from_the_environment_variable(settings):
    data = new_key_set()
    settings.VAULT_KEKS = json.dumps(data)
    settings.VAULT_KEKS_FILE = ""
    assert get_provider().active_kek_id() == data["active_kek"]


def test_index_key_from_its_own_variable_wins(settings):
    settings.VAULT_INDEX_KEY = B64_32
    assert get_provider().index_root_key() == b"k" * 32


def test_unwrap_with_the_wrong_kek_fails_clearly():
    one, other = provider_from(new_key_set()), provider_from(new_key_set())
    kek_id, wrapped = one.wrap(b"\x00" * 32, associated_data=b"ad")
    with pytest.raises(UnknownKek, match=kek_id):
        other.unwrap(wrapped, kek_id=kek_id, associated_data=b"ad")
    impostor = new_key_set()
    impostor["keks"] = {kek_id: B64_32}
    impostor["active_kek"] = kek_id
    with pytest.raises(UnwrapFailed):
        provider_from(impostor).unwrap(wrapped, kek_id=kek_id, associated_data=b"ad")
    with pytest.raises(UnwrapFailed):
        one.unwrap(wrapped, kek_id=kek_id, associated_data=b"other ad")


def test_init_writes_a_private_file_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "keys.json"
    call_command("vault_keys", "init", "--path", str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    LocalKeyProvider(path=str(path))  # valid
    before = path.read_text()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("vault_keys", "init", "--path", str(path))
    assert path.read_text() == before


def test_every_key_read_sees_a_change_made_by_another_process_at_once(vault_keys, monkeypatch):
    """Another process's `vault_keys` (here: a second provider on the same file) rotates; this
    process's very next read of each key is the new one, without waiting or restarting."""
    provider = get_provider()
    old_kek, old_receipt = provider.active_kek_id(), provider.receipt_signing_key().public_key()
    old_audit = provider.audit_signing_key().public_key()
    elsewhere = LocalKeyProvider(path=str(vault_keys))
    new_kek = elsewhere.add_kek()
    elsewhere.rotate_receipt_key()

    assert provider.active_kek_id() == new_kek != old_kek
    assert provider.wrap(b"\x00" * 32, associated_data=b"ad")[0] == new_kek
    assert set(provider.kek_ids()) == {old_kek, new_kek}
    current = provider.receipt_signing_key().public_key()
    assert current == elsewhere.receipt_signing_key().public_key() != old_receipt
    assert provider.receipt_verify_keys() == [current, old_receipt], "the old key stays published"
    assert provider.audit_signing_key().public_key() == old_audit

    # An unchanged file costs a stat per read, not a parse.
    parses = []
    parse = LocalKeyProvider._parse
    monkeypatch.setattr(LocalKeyProvider, "_parse", lambda self, text: parses.append(1) or parse(self, text))
    for _ in range(100):
        provider.receipt_signing_key()
        provider.active_kek_id()
    assert parses == []


def test_a_key_file_broken_by_hand_fails_reads_until_it_is_mended(vault_keys):
    provider = get_provider()
    good = vault_keys.read_text()
    vault_keys.write_text("{not json")
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        provider.receipt_signing_key()
    vault_keys.write_text(good + "\n")
    assert provider.active_kek_id() == json.loads(good)["active_kek"]


@pytest.mark.django_db
def test_rotate_rewraps_every_data_key_and_values_still_decrypt(thing, vault_keys, capsys, monkeypatch):
    rows = [thing(f"v{i}", subject_id=uuid.uuid4()) for i in range(7)]
    old = get_provider().active_kek_id()
    assert data_keys_by_kek() == {old: 7}

    call_command("vault_keys", "rotate", "--batch-size", "3")
    new = get_provider().active_kek_id()
    assert new != old
    assert data_keys_by_kek() == {new: 7}
    assert [unseal(row, "value", purpose="test") for row in rows] == [f"v{i}" for i in range(7)]
    assert set(json.loads(vault_keys.read_text())["keks"]) == {old, new}

    call_command("vault_keys", "status")
    status = capsys.readouterr().out
    assert f"{new}" in status and "active" in status and "wraps 7" in status

    with pytest.raises(CommandError, match="The active KEK is new"):
        call_command("vault_keys", "retire", old)  # processes may not have seen the new KEK yet
    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    call_command("vault_keys", "retire", old)
    assert set(json.loads(vault_keys.read_text())["keks"]) == {new}
    assert [unseal(row, "value", purpose="test") for row in rows] == [f"v{i}" for i in range(7)]


@pytest.mark.django_db
def test_retire_refuses_while_keys_are_wrapped_or_the_kek_is_active(thing, vault_keys, monkeypatch):
    monkeypatch.setattr(keys, "RELOAD_CHECK_SECONDS", 0)
    thing("v")
    old = get_provider().active_kek_id()
    with pytest.raises(CommandError, match="active KEK"):
        call_command("vault_keys", "retire", old)
    get_provider().add_kek()  # a new KEK without rewrapping
    with pytest.raises(CommandError, match="still wraps 1 data key"):
        call_command("vault_keys", "retire", old)
    call_command("vault_keys", "rotate", "--rewrap-only")
    call_command("vault_keys", "retire", old)


@pytest.mark.django_db
def test_a_retired_kek_fails_clearly(thing, vault_keys, settings):
    row = thing("v")
    data = json.loads(vault_keys.read_text())
    old = data["active_kek"]
    get_provider().add_kek()
    # Simulate a key file that lost the old KEK while a data key still needs it.
    data = json.loads(vault_keys.read_text())
    del data["keks"][old]
    vault_keys.write_text(json.dumps(data))
    settings.VAULT_KEKS_FILE = str(vault_keys)  # fresh provider
    with pytest.raises(UnknownKek, match=old):
        unseal(row, "value", purpose="test")


@pytest.mark.django_db
def test_rotate_can_resume(thing, vault_keys):
    for _ in range(5):
        thing("v", subject_id=uuid.uuid4())
    provider = get_provider()
    provider.add_kek()
    from vault.crypto import data_keys_rewrap

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(count):
        raise Interrupted

    with pytest.raises(Interrupted):
        data_keys_rewrap(batch_size=2, on_batch=stop_after_first_batch)
    assert data_keys_by_kek()[provider.active_kek_id()] == 2
    call_command("vault_keys", "rotate", "--rewrap-only")
    assert data_keys_by_kek() == {provider.active_kek_id(): 5}


def test_rotate_with_environment_keys_explains_what_to_do(settings, db):
    settings.VAULT_KEKS = json.dumps(new_key_set())
    with pytest.raises(CommandError, match="cannot change"):
        call_command("vault_keys", "rotate")


@pytest.mark.django_db
def test_subject_keys_shred(thing, sealed_table):
    """The core of every erasure (the rights app's `rights_erase` command and requests call it)."""
    from vault.crypto import SubjectErased
    from vault.services import subject_keys_shred

    subject = uuid.uuid4()
    row = thing("v", subject_id=subject)
    assert subject_keys_shred(subject_id=subject, actor_type="system", actor_id="test") == 1
    with pytest.raises(SubjectErased):
        unseal(sealed_table.objects.get(pk=row.pk), "value", purpose="test")

    entry = AuditEntry.objects.get(action="subject.shred")
    assert entry.subject_pseudonym is not None
    assert not AuditPseudonym.objects.filter(subject_id=subject).exists(), "the link to the person is cut"
    assert str(subject) not in str(AuditEntry.objects.values().get(pk=entry.pk))
    subject_keys_shred(subject_id=subject, actor_type="system", actor_id="test")  # again: harmless, no second entry
    assert AuditEntry.objects.filter(action="subject.shred").count() == 1
    assert audit_verify().ok
