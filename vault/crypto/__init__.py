"""Envelope encryption: per-subject data keys (DEKs) wrapped by the provider's KEK, and
AES-256-GCM values under those DEKs. One module per topic:

- `data_keys`: creating, caching (`key_scope`), unwrapping and shredding a person's keys;
- `envelope`: a value's ciphertext format, `encrypt` and `decrypt`;
- `bulk`: `decrypt_many`, the one-pass read of many people;
- `standalone`: envelopes that belong to no subject (pending sign-in state, MFA secrets);
- `rotation`: rewrapping every data key under a new KEK;
- `epochs`: a new KEK on a schedule, and old ones destroyed after the backup retention;
- `errors`: `SubjectErased`, `DecryptionFailed`, `as_subject_id`.

Unwrapped DEKs are cached only inside a `key_scope()` (one request, one task, one batch) and
never written anywhere. Erasing a subject deletes their wrapped DEKs: from then on every read of
their data raises `SubjectErased`, including reads of ciphertexts restored from a backup.
"""

from vault.crypto.bulk import BulkRead, decrypt_many
from vault.crypto.data_keys import (
    KeyScopeMiddleware,
    data_keys_create_many,
    data_keys_for_write_many,
    data_keys_prefetch,
    dek_associated_data,
    key_scope,
    subject_is_erased,
    subject_shred,
)
from vault.crypto.envelope import FORMAT_V1, decrypt, decrypt_for_subject, encrypt
from vault.crypto.epochs import EpochReport, key_epoch_advance
from vault.crypto.errors import DecryptionFailed, SubjectErased, as_subject_id
from vault.crypto.rotation import data_keys_by_kek, data_keys_rewrap
from vault.crypto.standalone import (
    decrypt_standalone,
    encrypt_standalone,
    standalone_by_kek,
    standalone_count_requested,
    standalone_rewrap,
    standalone_rewrap_all,
    standalone_rewrap_requested,
)
from vault.keys import associated_data

__all__ = [
    "FORMAT_V1",
    "BulkRead",
    "DecryptionFailed",
    "EpochReport",
    "KeyScopeMiddleware",
    "SubjectErased",
    "as_subject_id",
    "associated_data",
    "data_keys_by_kek",
    "data_keys_create_many",
    "data_keys_for_write_many",
    "data_keys_prefetch",
    "data_keys_rewrap",
    "decrypt",
    "decrypt_for_subject",
    "decrypt_many",
    "decrypt_standalone",
    "dek_associated_data",
    "encrypt",
    "encrypt_standalone",
    "key_epoch_advance",
    "key_scope",
    "standalone_by_kek",
    "standalone_count_requested",
    "standalone_rewrap",
    "standalone_rewrap_all",
    "standalone_rewrap_requested",
    "subject_is_erased",
    "subject_shred",
]
