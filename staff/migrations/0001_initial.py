from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="StaffAccess",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
            options={
                "managed": False,
                "default_permissions": (),
                "permissions": [
                    ("view_person", "Can open a person's page (values masked)"),
                    ("reveal_personal_data", "Can reveal a person's values (with a reason; audited)"),
                    ("view_consent_dashboard", "Can see the consent analytics dashboard (aggregates only)"),
                    ("view_audit_log", "Can read the audit log"),
                    ("verify_audit_chain", "Can verify the audit chain"),
                    ("view_key_status", "Can see the key status"),
                ],
            },
        ),
    ]
