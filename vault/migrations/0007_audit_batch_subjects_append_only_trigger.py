"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the people of batch entries, as on the
entries themselves (0003): the digest in the chain makes a change findable, the trigger makes the
application unable to make one.

Its own trigger function, with 0003's body: going back drops the function, which 0003's
triggers still use.
"""

from django.db import migrations

from vault.postgres import pg_trigger_operation

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
        USING HINT = 'Audit entries and the people of batch entries are never changed or removed.';
END;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0006_audit_batch_subjects"),
    ]

    operations = [
        pg_trigger_operation(
            "vault",
            ("AuditEntrySubject",),
            function="vault_audit_subjects_append_only",
            body=FUNCTION_BODY,
            triggers=[
                ("no_update_delete", "BEFORE UPDATE OR DELETE", "ROW"),
                ("no_truncate", "BEFORE TRUNCATE", "STATEMENT"),
            ],
        ),
    ]
