import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

# Fail at startup, not at the first request, when the vault keys are missing or malformed.
from vault.keys import get_provider  # noqa: E402

get_provider().self_test()
