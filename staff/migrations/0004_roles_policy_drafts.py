"""The privacy officer writes policy drafts (consent.PolicyDraft, made by consent 0007)."""

from django.db import migrations

from staff.roles import roles_install


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0003_roles_rights_handle"),
        ("consent", "0007_policy_draft"),
    ]

    operations = [migrations.RunPython(roles_install, migrations.RunPython.noop)]
