"""PostgreSQL refuses changing a published policy text, its hash or its date: the ledger names
texts by hash, and a receipt points at the text, so both must stay what the person saw.

A scheduled version may still be deleted before it takes effect (the admin allows only that).
"""

from django.db import migrations

from vault.postgres import pg_trigger_operation

FUNCTION_BODY = """
BEGIN
    IF NEW.text IS DISTINCT FROM OLD.text OR NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.effective_from IS DISTINCT FROM OLD.effective_from OR NEW.label IS DISTINCT FROM OLD.label THEN
        RAISE EXCEPTION 'a policy text is immutable once saved (% on %)', TG_OP, TG_TABLE_NAME
            USING HINT = 'Publish a new version instead.';
    END IF;
    RETURN NEW;
END;
"""


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_request_event")]

    operations = [
        pg_trigger_operation(
            "consent",
            ["PolicyVersion"],
            function="consent_policy_text_immutable",
            body=FUNCTION_BODY,
            triggers=[("immutable", "BEFORE UPDATE", "ROW")],
        ),
    ]
