"""Support agents and privacy officers act on data-subject requests: `rights.handle_rightsrequest`
(what the queue's actions and the staff API check) instead of `rights.change_rightsrequest`, which
the read-only request admin never honoured."""

from django.db import migrations

from staff.roles import roles_install


class Migration(migrations.Migration):
    dependencies = [("staff", "0002_roles")]

    operations = [migrations.RunPython(roles_install, migrations.RunPython.noop)]
