"""PostgreSQL specifics shared by the apps: array literals for bulk statements (and, in
migrations, the triggers that keep tables append-only)."""

from collections.abc import Iterable


def pg_array(hex_values: Iterable[str]) -> str:
    """A PostgreSQL array literal of hex strings (uuids' `.hex`, which need no quoting), sent as
    one parameter: psycopg adapting a list of 10,000 values one by one took longer than the
    statement itself."""
    return "{" + ",".join(hex_values) + "}"
