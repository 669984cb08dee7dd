"""The staff roles: each a group holding exactly the permissions its work needs (least privilege).

Installed and kept in step by the data migrations that call `roles_install`; a later change to a
role is a new migration calling it again, so every installation's groups match this file.
Superuser is for installation only (docs/admin.md): it bypasses every check here.
"""

from typing import Any

from django.contrib.auth.management import create_permissions

SUPPORT_AGENT = "Support agent"
PRIVACY_OFFICER = "Privacy officer"
MARKETER = "Marketer"
SCHEMA_EDITOR = "Schema editor"
KEY_ADMINISTRATOR = "Key administrator"
AUDITOR = "Auditor"

_REGISTERS = [  # what the vault knows and promises, without anyone's data
    "consent.view_purpose",
    "consent.view_policyversion",
    "profiles.view_fielddefinition",
    "profiles.view_recordkind",
]

ROLES: dict[str, list[str]] = {
    SUPPORT_AGENT: [
        "accounts.view_user",
        "staff.view_person",
        "staff.reveal_personal_data",
        "account.view_emailaddress",
        "socialaccount.view_socialaccount",
        "consent.view_consentstate",
        "consent.view_consentevent",
        "rights.view_rightsrequest",
        "rights.handle_rightsrequest",  # act on the queue: verify, extend, reject, complete, hold
        *_REGISTERS,
    ],
    PRIVACY_OFFICER: [
        "accounts.view_user",
        "accounts.change_user",  # staff accounts and their roles
        "auth.view_group",
        "staff.view_person",
        "staff.reveal_personal_data",
        "staff.view_consent_dashboard",
        "staff.view_audit_log",
        "staff.verify_audit_chain",
        "account.view_emailaddress",
        "socialaccount.view_socialaccount",
        "consent.view_consentstate",
        "consent.view_consentevent",
        "consent.add_purpose",
        "consent.change_purpose",
        "consent.add_policyversion",  # publishing a draft
        "consent.view_policydraft",
        "consent.add_policydraft",
        "consent.change_policydraft",
        "rights.view_rightsrequest",
        "rights.handle_rightsrequest",  # act on the queue: verify, extend, reject, complete, hold
        "profiles.view_merge",
        "profiles.change_merge",
        "partners.view_partnerclient",
        "partners.add_partnerclient",
        "partners.change_partnerclient",
        "partners.view_webhookdelivery",
        *_REGISTERS,
    ],
    MARKETER: [
        "staff.view_consent_dashboard",
        "partners.view_partnerclient",
        "partners.view_webhookdelivery",
        "partners.change_webhookdelivery",  # replay a delivery to a tool
        *_REGISTERS,
    ],
    SCHEMA_EDITOR: [
        "profiles.add_fielddefinition",
        "profiles.change_fielddefinition",
        "profiles.add_recordkind",
        "profiles.change_recordkind",
        *_REGISTERS,
    ],
    KEY_ADMINISTRATOR: [
        "staff.view_key_status",
        "staff.verify_audit_chain",
    ],
    AUDITOR: [
        "staff.view_audit_log",
        "staff.verify_audit_chain",
        "staff.view_key_status",
        "auth.view_group",
        "rights.view_rightsrequest",
        "partners.view_partnerclient",
        "partners.view_webhookdelivery",
        "profiles.view_merge",
        *_REGISTERS,
    ],
}


def roles_install(apps: Any, schema_editor: Any) -> None:
    """Create or update every role's group to hold exactly its permissions (a migration's step).

    Permissions are made by `post_migrate`, after all migrations; they are made here first so a
    fresh database gets its roles in the same `migrate`. A permission of a model that a later
    migration creates is skipped here and given by the migration that calls this after it
    (tests/staff check that every role ends up with exactly its list)."""
    db = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=db)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ROLES.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        found = []
        for label in wanted:
            app_label, codename = label.split(".")
            permission = Permission.objects.using(db).filter(content_type__app_label=app_label, codename=codename)
            found.extend(permission)
        group.permissions.set(found)
