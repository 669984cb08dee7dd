"""PostgreSQL refuses changing a published policy text, its hash or its date: the ledger names
texts by hash, and a receipt points at the text, so both must stay what the person saw.

A scheduled version may still be deleted before it takes effect (the admin allows only that).
"""

from django.db import migrations, router

CREATE = """
CREATE OR REPLACE FUNCTION consent_policy_text_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.text IS DISTINCT FROM OLD.text OR NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.effective_from IS DISTINCT FROM OLD.effective_from OR NEW.label IS DISTINCT FROM OLD.label THEN
        RAISE EXCEPTION 'a policy text is immutable once saved (% on %)', TG_OP, TG_TABLE_NAME
            USING HINT = 'Publish a new version instead.';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION consent_policy_text_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS {table}_immutable ON {table};
DROP FUNCTION IF EXISTS consent_policy_text_immutable();
"""


def _table(apps, schema_editor):
    model = apps.get_model("consent", "PolicyVersion")
    if schema_editor.connection.vendor != "postgresql":
        return None
    if not router.allow_migrate_model(schema_editor.connection.alias, model):
        return None
    return model._meta.db_table


def create_trigger(apps, schema_editor):
    table = _table(apps, schema_editor)
    if table:
        schema_editor.execute(CREATE.format(table=table), params=None)


def drop_trigger(apps, schema_editor):
    table = _table(apps, schema_editor)
    if table:
        schema_editor.execute(DROP.format(table=table), params=None)


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_request_event")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
