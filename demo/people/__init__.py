"""Realistic demo people for `manage.py seed_demo --people N` and the benchmarks.

People are profile-only subjects (random UUIDs, no login), as a brand's imported customers are:
no account row, so nothing about them is in plaintext anywhere. Each gets values across the
default schema's categories, consents in a plausible mix (imported, so a purpose that needs a
double opt-in is never granted), and, only where the matching purpose is granted, a social
profile, orders, returns, loyalty points and behavioral events. Everything personal is sealed
under the person's keys before it is inserted.

Written for 100,000 people in a few minutes: generation is separate from writing, and each
batch is one transaction that makes its data keys in bulk, seals its rows inside one key scope
(no key query per value), inserts them in bulk (COPY on PostgreSQL), imports the consents in
bulk, and writes one audit entry per person and kind of import.
"""

from demo.people.generate import DemoPerson, DemoRun
from demo.people.logins import adult_birth_date, demo_login_profile_ensure
from demo.people.store import demo_people_create

__all__ = ["DemoPerson", "DemoRun", "adult_birth_date", "demo_login_profile_ensure", "demo_people_create"]
