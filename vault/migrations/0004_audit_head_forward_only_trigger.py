"""PostgreSQL lets the audit head move only forward, and only to an entry that exists with the
hash the head names.

Appends move the head with the entry they insert (vault/audit/append.py). Anything else that
moves it, a `manage.py shell` or an injected UPDATE, is refused: setting it back would hide the
entries after it from `audit_verify`, which stops at the head, and setting it to a hash no entry
has would make an append chain onto it. A database owner can still disable the trigger; the
checkpoints exported outside the database (`audit_verify --checkpoints`) catch a head set back
behind one of them.

The head of an empty log may be removed (Django's test runner empties every table with one
TRUNCATE); the head of a log with entries may not. A new head row points at the genesis of an
empty log, or at an existing entry with its hash.
"""

from django.db import migrations

from vault.postgres import pg_trigger_operation

FUNCTION_BODY = """
DECLARE
    entry_hash text;
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        IF EXISTS (SELECT 1 FROM vault_auditentry) THEN
            RAISE EXCEPTION 'audit head only moves forward (% on %)', TG_OP, TG_TABLE_NAME
                USING HINT = 'The head of an audit log with entries is never removed.';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.seq = OLD.seq AND NEW.hash = OLD.hash THEN
            RETURN NEW;
        END IF;
        IF NEW.seq <= OLD.seq THEN
            RAISE EXCEPTION 'audit head only moves forward (from entry % to entry %)', OLD.seq, NEW.seq
                USING HINT = 'Entries are appended, never taken back.';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM vault_audithead) THEN
        RETURN NEW;  -- a second head: the primary key refuses it, as the appender expects
    END IF;
    IF NEW.seq = 0 THEN
        IF NEW.hash = repeat('0', 64) AND NOT EXISTS (SELECT 1 FROM vault_auditentry) THEN
            RETURN NEW;
        END IF;
    ELSE
        SELECT hash INTO entry_hash FROM vault_auditentry WHERE seq = NEW.seq;
        IF entry_hash = NEW.hash THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit head must name an existing entry and its hash (entry %)', NEW.seq
        USING HINT = 'The head moves only with the entry appended.';
END;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0003_audit_append_only_trigger"),
    ]

    operations = [
        pg_trigger_operation(
            "vault",
            ("AuditHead",),
            function="vault_audit_head_forward_only",
            body=FUNCTION_BODY,
            triggers=[
                ("forward_only", "BEFORE INSERT OR UPDATE OR DELETE", "ROW"),
                ("no_truncate", "BEFORE TRUNCATE", "STATEMENT"),
            ],
        ),
    ]
