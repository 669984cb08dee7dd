"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the audit entries and checkpoints.

The chain already makes any change findable; the trigger makes the application (or a stray
`manage.py shell`) unable to make one. A database owner can still disable it, which is what the
chain and the signed checkpoints are for. Other databases (SQLite in development) get no trigger.

TRUNCATE of an empty table is let through: it loses nothing, and Django's test runner empties
every table with one TRUNCATE after each transactional test.
"""

from django.db import migrations, router

APPEND_ONLY_MODELS = ("AuditEntry", "AuditCheckpoint")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION vault_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
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
$$;
"""

CREATE_TRIGGERS = """
CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION vault_audit_append_only();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION vault_audit_append_only();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""

DROP_FUNCTION = "DROP FUNCTION IF EXISTS vault_audit_append_only();"


def _tables(apps, schema_editor):
    """The audit tables in this database, if it is PostgreSQL and holds them (not the keystore)."""
    if schema_editor.connection.vendor != "postgresql":
        return []
    models = [apps.get_model("vault", name) for name in APPEND_ONLY_MODELS]
    alias = schema_editor.connection.alias
    return [model._meta.db_table for model in models if router.allow_migrate_model(alias, model)]


# params=None: the SQL goes as written (its % are PL/pgSQL's, not placeholders).
def create_triggers(apps, schema_editor):
    tables = _tables(apps, schema_editor)
    if tables:
        schema_editor.execute(CREATE_FUNCTION, params=None)
    for table in tables:
        schema_editor.execute(CREATE_TRIGGERS.format(table=table), params=None)


def drop_triggers(apps, schema_editor):
    tables = _tables(apps, schema_editor)
    for table in tables:
        schema_editor.execute(DROP_TRIGGERS.format(table=table), params=None)
    if tables:
        schema_editor.execute(DROP_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0002_audit"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
