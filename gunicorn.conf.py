"""gunicorn's settings, read from this file when `gunicorn config.wsgi` starts in the project folder.

gunicorn logs through handlers of its own, set up before Django's LOGGING: without this its
error lines and its access log would skip the personal-data filter. Here both go through the
filters and format of `config.settings.LOGGING`, and the access log names the path without its
query string, the status, size, duration and the response's request id: no client address,
user agent or referrer (personal data, DESIGN.md invariant 4).
"""

from config.settings import LOG_LEVEL, LOGGING

accesslog = "-"
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": LOGGING["filters"],
    "formatters": LOGGING["formatters"],
    "handlers": {"console": LOGGING["handlers"]["console"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
