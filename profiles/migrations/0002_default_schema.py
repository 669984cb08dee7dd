"""Installs a starting schema: the profile fields and the kinds of documents and events a brand
usually needs, each with the purposes that may use it and a retention period. Staff change or
deprecate them at run time; installing them again never overwrites a field that exists."""

from django.db import migrations, router

ALL_SOURCES = ["registration", "self_service", "social", "partner", "import", "staff"]
PERSON = ["registration", "self_service", "social", "import", "staff"]
YEAR = 365

FIELDS = [
    # key, label, type, category, purposes, retention days, extra
    ("given_name", "Given name", "text", "identity",
     ["account-management", "email-marketing", "loyalty-programme", "personalization"], 3 * YEAR,
     {"max_length": 100, "allowed_sources": PERSON}),
    ("family_name", "Family name", "text", "identity",
     ["account-management", "loyalty-programme"], 3 * YEAR, {"max_length": 100, "allowed_sources": PERSON}),
    ("email", "Contact e-mail", "email", "contact",
     ["account-management", "email-marketing", "loyalty-programme", "advertising-partners"], 3 * YEAR,
     {"searchable": True, "index_bits": 32, "allowed_sources": ALL_SOURCES}),
    ("phone", "Phone", "phone", "contact", ["account-management", "loyalty-programme"], 3 * YEAR,
     {"searchable": True, "index_bits": 32, "allowed_sources": PERSON}),
    ("birth_date", "Date of birth", "date", "demographic", ["account-management", "personalization"], 3 * YEAR,
     {"allowed_sources": PERSON, "help_text": "Also tells whether you may consent on your own."}),
    ("country", "Country", "country", "demographic",
     ["account-management", "email-marketing", "personalization", "analytics"], 3 * YEAR,
     {"allowed_sources": ALL_SOURCES}),
    ("city", "City", "text", "demographic", ["personalization", "analytics"], 2 * YEAR,
     {"max_length": 100, "allowed_sources": ALL_SOURCES}),
    ("postal_code", "Postal code", "text", "demographic", ["personalization"], 2 * YEAR,
     {"max_length": 20, "allowed_sources": PERSON}),
    ("preferred_language", "Preferred language", "choice", "preference",
     ["account-management", "email-marketing", "personalization"], 3 * YEAR,
     {"choices": ["en", "de", "fr", "es", "it", "nl", "pl", "pt"], "allowed_sources": ALL_SOURCES}),
    ("shoe_size", "Shoe size (EU)", "choice", "preference", ["personalization"], 2 * YEAR,
     {"choices": [str(size) for size in range(34, 49)], "allowed_sources": ALL_SOURCES}),
    ("clothing_size", "Clothing size", "choice", "preference", ["personalization"], 2 * YEAR,
     {"choices": ["XS", "S", "M", "L", "XL", "XXL"], "allowed_sources": ALL_SOURCES}),
    ("favorite_brands", "Favourite brands", "text", "preference", ["personalization", "email-marketing"], 2 * YEAR,
     {"max_length": 300, "allowed_sources": ALL_SOURCES}),
    ("interests", "Interests", "multi_choice", "preference", ["personalization", "email-marketing"], 2 * YEAR,
     {"choices": ["running", "outdoor", "fashion", "football", "yoga", "cycling", "tennis", "basketball"],
      "allowed_sources": ALL_SOURCES}),
    ("social_profile_url", "Social profile", "url", "social", ["personalization"], YEAR,
     {"allowed_sources": ["social", "self_service"]}),
    ("loyalty_tier", "Loyalty tier", "choice", "transactional", ["loyalty-programme"], 2 * YEAR,
     {"choices": ["bronze", "silver", "gold", "platinum"], "allowed_sources": ["partner", "staff", "import"],
      "person_can_edit": False}),
    ("lifetime_value", "Lifetime spend", "decimal", "transactional", ["loyalty-programme", "analytics"], 2 * YEAR,
     {"allowed_sources": ["partner", "import"], "person_can_edit": False}),
    ("last_seen_channel", "Last channel used", "choice", "behavioral", ["analytics"], YEAR,
     {"choices": ["web", "app", "store", "email"], "allowed_sources": ["partner", "import"],
      "person_can_edit": False}),
]

KINDS = [
    # slug, name, shape, category, purpose, retention days, sources
    ("social_profile", "Social profile", "document", "social", "personalization", YEAR, ["social"]),
    ("order", "Order", "event", "transactional", "personalization", 2 * YEAR, ["partner", "import"]),
    ("return", "Return", "event", "transactional", "personalization", 2 * YEAR, ["partner", "import"]),
    ("loyalty_points", "Loyalty points", "event", "transactional", "loyalty-programme", 2 * YEAR,
     ["partner", "import"]),
    ("page_view", "Page view", "event", "behavioral", "analytics", 180, ["partner"]),
    ("product_view", "Product view", "event", "behavioral", "personalization", 180, ["partner"]),
    ("review", "Review", "event", "behavioral", "personalization", 2 * YEAR, ["partner", "import"]),
    ("comment", "Comment", "event", "behavioral", "personalization", YEAR, ["partner", "import"]),
    ("email_engagement", "E-mail engagement", "event", "behavioral", "email-marketing", YEAR, ["partner"]),
]


def install(apps, schema_editor):
    FieldDefinition = apps.get_model("profiles", "FieldDefinition")
    if not router.allow_migrate_model(schema_editor.connection.alias, FieldDefinition):
        return
    FieldDefinitionVersion = apps.get_model("profiles", "FieldDefinitionVersion")
    RecordKind = apps.get_model("profiles", "RecordKind")
    Purpose = apps.get_model("consent", "Purpose")
    db = schema_editor.connection.alias
    purposes = {p.slug: p for p in Purpose.objects.using(db).all()}
    for key, label, field_type, category, purpose_slugs, retention, extra in FIELDS:
        definition, created = FieldDefinition.objects.using(db).get_or_create(
            key=key,
            defaults={"label": label, "field_type": field_type, "category": category, "retention_days": retention,
                      **extra},
        )
        if created:
            definition.purposes.set([purposes[slug] for slug in purpose_slugs if slug in purposes])
            FieldDefinitionVersion.objects.using(db).create(
                definition=definition,
                version=1,
                snapshot={"key": key, "field_type": field_type, "purposes": sorted(purpose_slugs), "installed": True},
                changed_by="migration",
            )
    for slug, name, shape, category, purpose, retention, sources in KINDS:
        if purpose in purposes:
            RecordKind.objects.using(db).get_or_create(
                slug=slug,
                defaults={"name": name, "shape": shape, "category": category, "purpose": purposes[purpose],
                          "retention_days": retention, "allowed_sources": sources},
            )


def uninstall(apps, schema_editor):
    FieldDefinition = apps.get_model("profiles", "FieldDefinition")
    if not router.allow_migrate_model(schema_editor.connection.alias, FieldDefinition):
        return
    db = schema_editor.connection.alias
    keys = [f[0] for f in FIELDS]
    apps.get_model("profiles", "RecordKind").objects.using(db).filter(slug__in=[k[0] for k in KINDS]).delete()
    # Dependent rows first, each by its own query: the collector cannot follow relations across
    # the historical models of a half-unapplied graph.
    FieldDefinition.purposes.through.objects.using(db).filter(fielddefinition__key__in=keys)._raw_delete(db)
    versions = apps.get_model("profiles", "FieldDefinitionVersion").objects.using(db)
    versions.filter(definition__key__in=keys)._raw_delete(db)
    # Without the collector: stored values reference their fields, and the database refuses to
    # remove a field that still has values (as it should).
    FieldDefinition.objects.using(db).filter(key__in=keys)._raw_delete(db)


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0001_schema_values_events"),
        ("consent", "0006_data_subject_rights_purpose"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
