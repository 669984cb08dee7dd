"""Installs the staff roles as groups with exactly their permissions (staff/roles.py)."""

from django.db import migrations

from staff.roles import roles_install


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0004_social_link_state"),
        ("consent", "0006_data_subject_rights_purpose"),
        ("profiles", "0002_default_schema"),
        ("rights", "0003_provider_deletion_request"),
        ("partners", "0006_merge_webhooks"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("socialaccount", "0006_alter_socialaccount_extra_data"),
        ("mfa", "0003_authenticator_type_uniq"),
        ("usersessions", "0001_initial"),
    ]

    # Reversing keeps the groups: removing them would take staff's access away silently.
    operations = [migrations.RunPython(roles_install, migrations.RunPython.noop)]
