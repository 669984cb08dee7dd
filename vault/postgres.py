"""PostgreSQL specifics shared by the apps: array literals for bulk statements, and the migration
operation that installs the triggers keeping tables append-only or immutable."""

from collections.abc import Iterable, Sequence

from django.apps.registry import Apps
from django.db import migrations, router
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.utils.deconstruct import deconstructible


def pg_array(hex_values: Iterable[str]) -> str:
    """A PostgreSQL array literal of hex strings (uuids' `.hex`, which need no quoting), sent as
    one parameter: psycopg adapting a list of 10,000 values one by one took longer than the
    statement itself."""
    return "{" + ",".join(hex_values) + "}"


# --- Triggers installed by migrations -----------------------------------------------------------
# Applied migrations call this code as it is now, not as it was when they were written: change
# it only in ways that leave what they install (names, SQL) the same.


def pg_trigger_operation(
    app_label: str,
    models: Sequence[str],
    *,
    function: str,
    body: str,
    triggers: Sequence[tuple[str, str, str]],
) -> migrations.RunPython:
    """The reversible migration operation that has PostgreSQL guard the tables of `models`.

    Forwards, it creates the PL/pgSQL trigger function `function()` with `body` (between
    `AS $$` and `$$`), then on each table the `triggers`, given as (name suffix, timing and
    events, ROW or STATEMENT): `("no_update", "BEFORE UPDATE", "ROW")` makes the trigger
    `<table>_no_update`. Backwards, it drops the triggers, then the function. It acts only on
    PostgreSQL, and only on the tables the router lets migrate to that database; elsewhere
    (SQLite in development, the keystore database) it does nothing.
    """
    create, drop = (
        PgTriggers(app_label=app_label, models=models, function=function, body=body, triggers=triggers, drop=drop)
        for drop in (False, True)
    )
    return migrations.RunPython(create, drop, elidable=False)


@deconstructible(path="vault.postgres.PgTriggers")
class PgTriggers:
    """One direction of `pg_trigger_operation`, as RunPython's callable. A class, not a closure,
    so that Django can still write it into a squashed migration."""

    def __init__(
        self,
        *,
        app_label: str,
        models: Sequence[str],
        function: str,
        body: str,
        triggers: Sequence[tuple[str, str, str]],
        drop: bool = False,
    ) -> None:
        for _, _, level in triggers:
            if level not in ("ROW", "STATEMENT"):
                raise ValueError(f"A trigger fires for each ROW or STATEMENT, not {level!r}.")
        self.app_label, self.models, self.function, self.body = app_label, tuple(models), function, body
        self.triggers, self.drop = tuple(tuple(trigger) for trigger in triggers), drop

    def _tables(self, apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> list[str]:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return []
        models = [apps.get_model(self.app_label, name) for name in self.models]
        return [model._meta.db_table for model in models if router.allow_migrate_model(connection.alias, model)]

    def __call__(self, apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        tables = self._tables(apps, schema_editor)
        if not tables:
            return
        quote = schema_editor.quote_name
        # params=None: the SQL goes as written (its % are PL/pgSQL's, not placeholders).
        if self.drop:
            for table in tables:
                for suffix, _, _ in self.triggers:
                    schema_editor.execute(
                        f"DROP TRIGGER IF EXISTS {quote(f'{table}_{suffix}')} ON {quote(table)};", params=None
                    )
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {self.function}();", params=None)
            return
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger\n"
            f"LANGUAGE plpgsql AS $$\n{self.body.strip()}\n$$;",
            params=None,
        )
        for table in tables:
            for suffix, events, level in self.triggers:
                schema_editor.execute(
                    f"CREATE TRIGGER {quote(f'{table}_{suffix}')} {events} ON {quote(table)}\n"
                    f"    FOR EACH {level} EXECUTE FUNCTION {self.function}();",
                    params=None,
                )
