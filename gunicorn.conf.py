"""gunicorn's settings, read from this file when `gunicorn vault.wsgi` starts in the project folder.

gunicorn logs through handlers of its own, set up before Django's LOGGING: without this its
error lines and its access log would skip the personal-data filter. Here both go through
`vault.log.PersonalDataFilter` in the application's format, and the access log names the path
without its query string, the status, size, duration and request id: no client address, user
agent or referrer (personal data, DESIGN.md invariant 4).
"""

import os

_format = os.environ.get("LOG_FORMAT") or ("json" if os.environ.get("DJANGO_ENV") == "production" else "text")
_level = os.environ.get("LOG_LEVEL", "INFO")

accesslog = "-"
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"personal_data": {"()": "vault.log.PersonalDataFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _format,
            "filters": ["personal_data"],
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": _level, "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
