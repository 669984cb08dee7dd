"""The staff site's own admin registrations, one import per feature (each module registers)."""

from staff.people import admin as people_admin  # noqa: F401  (allauth's pages wrapped, the user list)
