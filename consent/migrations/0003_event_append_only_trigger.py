"""PostgreSQL refuses UPDATE on the consent ledger: a recorded choice is never rewritten.

DELETE stays allowed, because erasing a person removes their ledger rows. Other databases
(SQLite in development) get no trigger; `ConsentEvent.save()` refuses updates there too.
"""

from django.db import migrations

from vault.postgres import pg_trigger_operation

FUNCTION_BODY = """
BEGIN
    RAISE EXCEPTION 'consent ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING HINT = 'Record a new consent event instead of changing one.';
END;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0002_default_purposes"),
    ]

    operations = [
        pg_trigger_operation(
            "consent",
            ["ConsentEvent"],
            function="consent_event_append_only",
            body=FUNCTION_BODY,
            triggers=[("no_update", "BEFORE UPDATE", "ROW")],
        ),
    ]
