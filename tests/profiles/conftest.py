import pytest


@pytest.fixture
def schema(profile_schema):
    """The default purposes and profile schema (the profiles tests' name for `profile_schema`)."""
