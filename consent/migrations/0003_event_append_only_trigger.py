"""PostgreSQL refuses UPDATE on the consent ledger: a recorded choice is never rewritten.

DELETE stays allowed, because erasing a person removes their ledger rows. Other databases
(SQLite in development) get no trigger; `ConsentEvent.save()` refuses updates there too.
"""

from django.db import migrations, router

CREATE = """
CREATE OR REPLACE FUNCTION consent_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING HINT = 'Record a new consent event instead of changing one.';
END;
$$;
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION consent_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS {table}_no_update ON {table};
DROP FUNCTION IF EXISTS consent_event_append_only();
"""


def _table(apps, schema_editor):
    model = apps.get_model("consent", "ConsentEvent")
    if schema_editor.connection.vendor != "postgresql":
        return None
    if not router.allow_migrate_model(schema_editor.connection.alias, model):
        return None
    return model._meta.db_table


# params=None: the SQL goes as written (its % are PL/pgSQL's, not placeholders).
def create_trigger(apps, schema_editor):
    table = _table(apps, schema_editor)
    if table:
        schema_editor.execute(CREATE.format(table=table), params=None)


def drop_trigger(apps, schema_editor):
    table = _table(apps, schema_editor)
    if table:
        schema_editor.execute(DROP.format(table=table), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_default_purposes"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
