"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the audit entries and checkpoints.

The chain already makes any change findable; the trigger makes the application (or a stray
`manage.py shell`) unable to make one. A database owner can still disable it, which is what the
chain and the signed checkpoints are for. Other databases (SQLite in development) get no trigger.

TRUNCATE of an empty table is let through: it loses nothing, and Django's test runner empties
every table with one TRUNCATE after each transactional test.
"""

from django.db import migrations

from vault.postgres import pg_trigger_operation

APPEND_ONLY_MODELS = ("AuditEntry", "AuditCheckpoint")

FUNCTION_BODY = """
DECLARE
    has_rows boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO has_rows;
        IF NOT has_rows THEN
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING HINT = 'Audit entries and checkpoints are never changed or removed.';
END;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0002_audit"),
    ]

    operations = [
        pg_trigger_operation(
            "vault",
            APPEND_ONLY_MODELS,
            function="vault_audit_append_only",
            body=FUNCTION_BODY,
            triggers=[
                ("no_update_delete", "BEFORE UPDATE OR DELETE", "ROW"),
                ("no_truncate", "BEFORE TRUNCATE", "STATEMENT"),
            ],
        ),
    ]
