"""Settings, read only from the environment (README lists every variable and its default).

`DJANGO_ENV=development` (the default) runs from a fresh clone with no configuration: SQLite
under var/, eager Celery, a development secret key. `DJANGO_ENV=production` turns on every
transport protection and refuses to start without its secrets and vault keys.
"""

import json
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from vault.env import env_bool, env_choice, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAULT_VAR_DIR", str(BASE_DIR / "var")))

DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production.")

SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_ENV=production."
        )
    SECRET_KEY = "django-insecure-development-only-never-use-this-key-in-production"  # noqa: S105
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 random characters.")

# --- Vault keys -------------------------------------------------------------------------------
# See vault/keys.py for the key set's format. A development checkout keeps its keys in var/
# (`make run` creates them); production must be given them and refuses to start without.
VAULT_KEY_PROVIDER = env_str("VAULT_KEY_PROVIDER", "vault.keys.LocalKeyProvider")
VAULT_KEKS = env_str("VAULT_KEKS")
VAULT_KEKS_FILE = env_str("VAULT_KEKS_FILE", "" if PRODUCTION else str(VAR_DIR / "vault-keys.json"))
VAULT_INDEX_KEY = env_secret("VAULT_INDEX_KEY")
if PRODUCTION:
    missing = [
        name
        for name, value in (("VAULT_KEKS", VAULT_KEKS or VAULT_KEKS_FILE), ("VAULT_INDEX_KEY", VAULT_INDEX_KEY))
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} (or the matching _FILE variable) must be set when DJANGO_ENV=production."
        )
# Signed audit checkpoints are copied here as they are made (docs/audit.md): a JSON-lines file, or
# a directory that gets one file per checkpoint, on storage the database's administrators cannot
# rewrite. Empty: checkpoints stay in the database only (`check --deploy` warns in production).
AUDIT_CHECKPOINT_SINK = env_str("AUDIT_CHECKPOINT_SINK", "" if PRODUCTION else str(VAR_DIR / "audit-checkpoints.jsonl"))
AUDIT_CHECKPOINT_SINK_BACKEND = env_str("AUDIT_CHECKPOINT_SINK_BACKEND", "vault.audit.sink.FileCheckpointSink")
# Key epochs (docs/backups.md): a new KEK becomes active every VAULT_KEY_EPOCH_DAYS and every data
# key is rewrapped under it; an old KEK is destroyed VAULT_BACKUP_RETENTION_DAYS after its epoch
# ended. A backup is then unreadable (for everyone) at most epoch + retention days after it was
# taken, so an erasure reaches backups too. Keep backups no longer than VAULT_BACKUP_RETENTION_DAYS.
VAULT_KEY_EPOCH_DAYS = env_int("VAULT_KEY_EPOCH_DAYS", 30, minimum=1)
VAULT_BACKUP_RETENTION_DAYS = env_int("VAULT_BACKUP_RETENTION_DAYS", 35, minimum=0)
# Every erasure is journalled here before any key is destroyed, signed with the audit key: a
# restored backup is made to forget again by `manage.py vault_erasure_replay`. A JSON-lines file,
# or a directory that gets one file per erasure; outside the database and its backups. Empty: no
# journal (`check --deploy` warns in production).
VAULT_ERASURE_JOURNAL = env_str("VAULT_ERASURE_JOURNAL", "" if PRODUCTION else str(VAR_DIR / "erasure-journal.jsonl"))
VAULT_ERASURE_JOURNAL_BACKEND = env_str("VAULT_ERASURE_JOURNAL_BACKEND", "vault.erasure_journal.FileErasureJournal")
# Phone numbers without a country code are read as from this region (ISO 3166 alpha-2) when
# blind-indexed; empty means they must carry one.
VAULT_PHONE_REGION = env_str("VAULT_PHONE_REGION", "")
# Data keys can live in a database of their own, with a shorter backup retention than the data
# they protect: a restored old backup of the main database then holds only unreadable values.
VAULT_KEYSTORE_DATABASE_URL = env_str("VAULT_KEYSTORE_DATABASE_URL")
# Largest profile value and largest document or event body accepted, in bytes (UTF-8).
VAULT_PROFILE_MAX_VALUE_BYTES = env_int("VAULT_PROFILE_MAX_VALUE_BYTES", 16 * 1024, minimum=64)
VAULT_PROFILE_MAX_DOCUMENT_BYTES = env_int("VAULT_PROFILE_MAX_DOCUMENT_BYTES", 256 * 1024, minimum=1024)
# A merge of two profiles can be undone for this long.
VAULT_MERGE_UNDO_DAYS = env_int("VAULT_MERGE_UNDO_DAYS", 30, minimum=0)
# The retention run deletes this many rows per batch (one short transaction each).
VAULT_RETENTION_BATCH = env_int("VAULT_RETENTION_BATCH", 2000, minimum=1)
# An access or export bundle can be downloaded for this long, then it is deleted.
RIGHTS_EXPORT_TTL_HOURS = env_int("RIGHTS_EXPORT_TTL_HOURS", 72, minimum=1)
# Partners' event ingestion (docs/partners.md, "Event ingestion"): events per batch (more is 413),
# the size and nesting of one event's body, and how long an Idempotency-Key's answer is kept.
PARTNERS_EVENTS_MAX_BATCH = env_int("PARTNERS_EVENTS_MAX_BATCH", 1000, minimum=1)
PARTNERS_EVENT_MAX_BYTES = env_int("PARTNERS_EVENT_MAX_BYTES", 16 * 1024, minimum=256)
PARTNERS_EVENT_MAX_DEPTH = env_int("PARTNERS_EVENT_MAX_DEPTH", 8, minimum=1)
PARTNERS_IDEMPOTENCY_HOURS = env_int("PARTNERS_IDEMPOTENCY_HOURS", 24, minimum=1)
# Partner segments: members computed inside the vault expire this long after their computation
# (a refresh computes them anew); the job examines this many people per batch.
PARTNERS_SEGMENT_TTL_HOURS = env_int("PARTNERS_SEGMENT_TTL_HOURS", 7 * 24, minimum=1)
PARTNERS_SEGMENT_BATCH = env_int("PARTNERS_SEGMENT_BATCH", 2000, minimum=1)
# An audience export page holds at most this many people (the cursor brings the next), read
# through the gate this many at a time while the page streams.
PARTNERS_EXPORT_PAGE = env_int("PARTNERS_EXPORT_PAGE", 10_000, minimum=1)
PARTNERS_EXPORT_BATCH = env_int("PARTNERS_EXPORT_BATCH", 2000, minimum=1)
# Batches of an export page read at once, each on a connection of its own (a thread): 1 reads
# them one after another on the request's connection (as SQLite always does).
PARTNERS_EXPORT_WORKERS = env_int("PARTNERS_EXPORT_WORKERS", 1, minimum=1)
# The staff's consent analytics show no count below this (k-anonymity), nor a rate made from one.
STAFF_ANALYTICS_MIN_COUNT = env_int("STAFF_ANALYTICS_MIN_COUNT", 10, minimum=2)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the site's host(s) when DJANGO_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "staff.apps.StaffAdminConfig",  # Django's admin on the staff site (staff/site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",  # allauth's list of signed-in sessions uses its filters
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # Installed always, offered only when configured (accounts/social_providers.py).
    "allauth.socialaccount.providers.apple",
    "allauth.socialaccount.providers.facebook",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "allauth.usersessions",
    "allauth.headless",
    # Its abstract key model is the base of partners.PartnerCredential; its own APIKey table stays empty.
    "rest_framework_api_key",
    "vault",
    "accounts",
    "profiles",
    "consent",
    "demo",
    "portal",
    "rights",
    "partners",
    "staff",
]

MIDDLEWARE = [
    "vault.log.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "vault.http.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "vault.http.PrivacyHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.social.SocialLoginMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.mfa.StaffMfaMiddleware",
    "vault.crypto.KeyScopeMiddleware",
    "consent.gpc.GlobalPrivacyControlMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if VAULT_KEYSTORE_DATABASE_URL:
    DATABASES["keystore"] = dj_database_url.parse(
        VAULT_KEYSTORE_DATABASE_URL, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"], conn_health_checks=True
    )
DATABASE_ROUTERS = ["vault.routers.KeystoreRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cache_url = env_str("CACHE_URL", "" if PRODUCTION else "locmem://")
# Login lockouts and rate limits are counted in the cache: a per-process cache lets each worker
# count on its own (two workers allowed 9 wrong passwords where the limit is 5).
if PRODUCTION and not _cache_url.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(
        "CACHE_URL must be a shared redis:// cache when DJANGO_ENV=production: rate limits and login "
        "lockouts are counted there, and a per-process cache would let every worker count alone."
    )
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
elif _cache_url == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL must be locmem:// or a redis:// URL, got {_cache_url!r}.")

# --- Identity ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2id first (RFC 9106, memory-hard); the others only verify older hashes, which Django
# rehashes with Argon2 at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Sign-up asks for the consent choices, the date of birth and the country (portal/forms.py); as
# allauth's base of every sign-up form (classic, headless, social) they are asked everywhere.
ACCOUNT_SIGNUP_FORM_CLASS = "portal.forms.ConsentSignupForm"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_USER_DISPLAY = "accounts.models.user_display"  # pages greet people by address, not by id
ACCOUNT_LOGIN_BY_CODE_ENABLED = True  # "e-mail me a sign-in code", besides the password
ACCOUNT_CHANGE_EMAIL = True  # one address per account; a new one replaces it once verified
ACCOUNT_EMAIL_NOTIFICATIONS = True  # mail the person when their password or address changes
# Written out (these are allauth's defaults) so that they are visible and stay on. Counted in
# the cache: with several web processes CACHE_URL must be a shared Redis.
ACCOUNT_RATE_LIMITS = {
    "signup": "20/m/ip",
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "request_login_code": "20/m/ip,3/m/key",
    "confirm_email": "1/180s/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reauthenticate": "10/m/user",
}
HEADLESS_SERVE_SPECIFICATION = False  # our own OpenAPI lives at /api/schema/
# --- MFA (allauth.mfa) and sessions (allauth.usersessions) ---------------------------------------
# TOTP apps, recovery codes and WebAuthn security keys / passkeys. Mandatory for staff: a staff
# account reaches the admin and the API only from a session that passed MFA (accounts/mfa.py).
MFA_ADAPTER = "accounts.mfa.MfaAdapter"  # seals TOTP secrets and recovery-code seeds
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Consent vault")
# WebAuthn refuses plain-HTTP origins; a development server on http://127.0.0.1 needs this.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env_bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", not PRODUCTION)
if PRODUCTION and MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN:
    raise ImproperlyConfigured("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN must be off when DJANGO_ENV=production.")
# Sessions are recorded at sign-in only (not on every request): the person's list of signed-in
# devices, with sign-out of the others. IP and user agent are reduced before they are stored.
USERSESSIONS_TRACK_ACTIVITY = False
ACCOUNT_EMAIL_VERIFICATION = env_choice("ACCOUNT_EMAIL_VERIFICATION", "mandatory", ("mandatory", "optional", "none"))
# --- Social login (accounts/social/, accounts/social_providers.py) ------------------------------
# Providers exist only when their client id and secret are set (README: SOCIAL_*). The accounts
# app builds SOCIALACCOUNT_PROVIDERS from those variables when it starts (and adds each provider's
# sign-in origin to CSP form-action), so this module reads the environment and imports no app.
# Sign-up through one always shows the consent and import screen; tokens and answers are sealed.
SOCIALACCOUNT_ADAPTER = "accounts.social.SocialAccountAdapter"
SOCIALACCOUNT_FORMS = {
    "signup": "portal.social_forms.SocialSignupForm",
    "disconnect": "portal.social_forms.SocialDisconnectForm",  # "keep as my own" per imported value
}
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_STORE_TOKENS = True  # sealed in the vault; allauth's own columns stay empty
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # a provider's word alone never opens an existing account
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("SOCIALACCOUNT_REQUESTS_TIMEOUT", 10, minimum=1)


def _social_account_str(account: object) -> str:
    """allauth's SOCIALACCOUNT_SOCIALACCOUNT_STR: how a linked account is printed wherever it is
    (the admin's pages and its log among them): by provider and row id, never by an address."""
    return f"{getattr(account, 'provider', '')} account {getattr(account, 'pk', '')}"


SOCIALACCOUNT_SOCIALACCOUNT_STR = _social_account_str  # allauth reads it under this doubled name
# Security events providers push (accounts/social/security_events.py): back-channel logout and
# Google's Cross-Account Protection. A token older than this is refused (and its jti is
# remembered this long); Google's RISC configuration names the keys its tokens are signed with.
SOCIAL_SECURITY_EVENT_MAX_AGE_SECONDS = env_int("SOCIAL_SECURITY_EVENT_MAX_AGE_SECONDS", 300, minimum=30)
SOCIAL_GOOGLE_RISC_CONFIGURATION_URL = env_str(
    "SOCIAL_GOOGLE_RISC_CONFIGURATION_URL", "https://accounts.google.com/.well-known/risc-configuration"
)
SOCIAL_GOOGLE_RISC_ISSUER = env_str("SOCIAL_GOOGLE_RISC_ISSUER", "https://accounts.google.com/")
# Refresh and maximum age per provider (accounts/social/policies.py): SOCIAL_<PROVIDER>_REFRESH_HOURS,
# _MAX_AGE_DAYS, _IMPORT_FIELDS, read by the accounts app at start-up. Links refreshed per beat run:
SOCIAL_REFRESH_BATCH = env_int("SOCIAL_REFRESH_BATCH", 200, minimum=1)

_mail_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
_smtp_options = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 587, minimum=1),
    "username": env_str("EMAIL_HOST_USER"),
    "password": env_secret("EMAIL_HOST_PASSWORD"),
    "use_tls": env_bool("EMAIL_USE_TLS", True),
    "timeout": 10,
}
MAILERS = {
    "default": {
        "BACKEND": _mail_backend,
        "OPTIONS": _smtp_options if _mail_backend.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "vault@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- The controller, as consent receipts name it (Kantara Consent Receipt v1.1) ------------------
VAULT_CONTROLLER = {
    "name": env_str("VAULT_CONTROLLER_NAME", "Example Brand B.V."),
    "contact": env_str("VAULT_CONTROLLER_CONTACT", "Privacy team"),
    "email": env_str("VAULT_CONTROLLER_EMAIL", "privacy@example.com"),
    "phone": env_str("VAULT_CONTROLLER_PHONE", "+31 20 000 0000"),
    "address": env_str("VAULT_CONTROLLER_ADDRESS", "Example Street 1, 1000 AA Amsterdam, NL"),
    "url": env_str("VAULT_CONTROLLER_URL", "https://example.com"),
    "jurisdiction": env_str("VAULT_CONTROLLER_JURISDICTION", "NL"),
}
# Public base URL of this site: mailed links and signed receipts carry it (receipts forever), so
# production must name it; in development it follows the port the server is started on (PORT).
VAULT_SITE_URL = env_str(
    "VAULT_SITE_URL", "" if PRODUCTION else f"http://127.0.0.1:{env_int('PORT', 8000, minimum=1)}"
).rstrip("/")
if PRODUCTION and not VAULT_SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("VAULT_SITE_URL must be the site's public https:// URL when DJANGO_ENV=production.")
# Ages of digital consent by country (GDPR Art. 8, COPPA), from the bundled table; a JSON object
# in VAULT_DIGITAL_CONSENT_AGES ({"NL": 16, "default": 16}) replaces it.
_ages_override = env_str("VAULT_DIGITAL_CONSENT_AGES")
try:
    VAULT_DIGITAL_CONSENT_AGES: dict[str, int] = {
        key: value
        for key, value in json.loads(
            _ages_override or (BASE_DIR / "consent" / "digital_consent_ages.json").read_text()
        ).items()
        if not key.startswith("_")
    }
except (ValueError, AttributeError):
    raise ImproperlyConfigured("VAULT_DIGITAL_CONSENT_AGES must be a JSON object of country codes to ages.") from None
if not all(isinstance(age, int) and 0 < age < 30 for age in VAULT_DIGITAL_CONSENT_AGES.values()):
    raise ImproperlyConfigured("VAULT_DIGITAL_CONSENT_AGES: every age must be a whole number of years.")
VAULT_DIGITAL_CONSENT_AGES.setdefault("default", 16)
# How long a double opt-in or parental consent link stays valid.
CONSENT_LINK_MAX_AGE_SECONDS = env_int("CONSENT_LINK_MAX_AGE_SECONDS", 3 * 24 * 3600, minimum=300)
# What consent asks of the apps above it, by dotted path (consent imports neither): the age gate's
# source of a person's age and country (a subclass of consent.services.AgeSource), and the
# function giving a person's own address for confirmation mail (`subject_id=` in, str or None out).
CONSENT_AGE_SOURCE = env_str("CONSENT_AGE_SOURCE", "profiles.ages.ProfileAgeSource")
CONSENT_MAIL_ADDRESS_SOURCE = env_str("CONSENT_MAIL_ADDRESS_SOURCE", "accounts.selectors.account_email")
# Global Privacy Control: the date our /.well-known/gpc.json last changed (RFC 3339 full-date).
VAULT_GPC_LAST_UPDATE = env_str("VAULT_GPC_LAST_UPDATE", "2026-11-28")

# --- HTTP security ----------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Database sessions with allauth's pending sign-in state sealed at rest (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
CSRF_FAILURE_VIEW = "vault.api.csrf_failure"  # the JSON envelope on API paths
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# One policy everywhere, so development shows what production would block. Scripts load from
# our own origin or carry the per-response nonce; nothing is framed or framing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    # Social sign-in leaves for the provider's page through a form's redirect: the accounts app
    # adds the configured providers' origins when it starts (accounts/apps.py).
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Browsers use the session; apps the session token django-allauth's headless API hands out
    # at /_allauth/app/v1/auth/login (header X-Session-Token).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Both refuse a staff account whose session did not pass MFA (accounts/mfa.py).
        "accounts.mfa.StaffMfaSessionAuthentication",
        "accounts.mfa.StaffMfaTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "vault.api.Pagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "1000/minute"),
        # Endpoints that send e-mail (double opt-in, parental consent): a mail cannon otherwise.
        "consent_mail": env_str("API_THROTTLE_CONSENT_MAIL", "10/hour"),
        # Meta's data deletion callback (server to server, per calling address).
        "provider_callback": env_str("API_THROTTLE_PROVIDER_CALLBACK", "60/minute"),
        # Security events pushed by providers, per sending address (accounts/views.py).
        "security_events": env_str("API_THROTTLE_SECURITY_EVENTS", "120/minute"),
    },
    "EXCEPTION_HANDLER": "vault.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Consent and profile vault API",
    "DESCRIPTION": "Purpose-bound access to consented profile data. Errors use one envelope: "
    '`{"status": 400, "errors": [{"code": ..., "message": ..., "param": ...}]}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "vault.schema.error_envelope_hook",  # the error envelope on every operation
    ],
    # The schema and its docs describe the API and hold no personal data: the same for everyone,
    # signed in or not (a staff session without MFA used to get 403 where a stranger got 200).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Celery -----------------------------------------------------------------------------------
# Without a broker, tasks run eagerly in the calling process: fine for a first run, and what the
# SQLite test run uses. With one, tasks are acknowledged only after they finish (acks_late), so a
# worker that dies mid-task leaves the message for another worker; tasks are therefore idempotent.
_broker_url = env_str("CELERY_BROKER_URL")
CELERY_BROKER_URL = _broker_url or "memory://"
CELERY_TASK_ALWAYS_EAGER = not _broker_url
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60 if CELERY_TASK_TIME_LIMIT > 120 else None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers unacknowledged messages after this; it must exceed the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# `celery -A config beat` runs these. Signed audit checkpoints bound how much of the log an
# attacker with database access could rewrite unnoticed.
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {
        "task": "vault.audit_checkpoint",
        "schedule": env_int("AUDIT_CHECKPOINT_SECONDS", 3600, minimum=60),
    },
    # Starts a new key epoch when the active KEK is older than VAULT_KEY_EPOCH_DAYS and destroys
    # KEKs past the backup retention; most runs find nothing to do.
    "vault-key-epoch": {
        "task": "vault.key_epoch_advance",
        "schedule": env_int("VAULT_KEY_EPOCH_CHECK_SECONDS", 3600, minimum=60),
    },
    "consent-expire-requests": {"task": "consent.expire_requests", "schedule": 3600},
    "rights-erasures": {
        "task": "rights.erasures_run",
        "schedule": env_int("RIGHTS_ERASURE_SWEEP_SECONDS", 900, minimum=10),
    },
    "rights-digest": {"task": "rights.digest_send", "schedule": 24 * 3600},
    "profiles-retention": {
        "task": "profiles.retention_run",
        "schedule": env_int("RETENTION_RUN_SECONDS", 3600, minimum=60),
    },
    "partners-ingestion-requests-purge": {"task": "partners.ingestion_requests_purge", "schedule": 3600},
    "rights-exports-expire": {"task": "rights.exports_expire", "schedule": 3600},
    # Outbox events (consent changes, profile updates, erasures) fanned out to partners' webhooks,
    # and the deliveries that are due sent: both every few seconds, both cheap when idle.
    "partners-webhooks-fanout": {
        "task": "partners.webhooks_fanout",
        "schedule": env_int("PARTNERS_WEBHOOK_FANOUT_SECONDS", 5, minimum=1),
    },
    "partners-webhooks-send": {
        "task": "partners.webhooks_send",
        "schedule": env_int("PARTNERS_WEBHOOK_SEND_SECONDS", 10, minimum=1),
    },
    # Social-provider data: due refreshes, and purges past a provider's maximum age.
    "social-refresh": {
        "task": "accounts.social_refresh_run",
        "schedule": env_int("SOCIAL_REFRESH_SWEEP_SECONDS", 900, minimum=60),
    },
    "partners-segment-members-expire": {"task": "partners.segment_members_expire", "schedule": 3600},
}

# --- Partners' webhooks and triggers (partners/) ---------------------------------------------
# A delivery is tried up to this many times, the n-th retry after BASE * 2**(n-1) seconds (capped
# at MAX_DELAY), then marked failed; staff replay it from the admin.
PARTNERS_WEBHOOK_MAX_ATTEMPTS = env_int("PARTNERS_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
PARTNERS_WEBHOOK_BACKOFF_SECONDS = env_int("PARTNERS_WEBHOOK_BACKOFF_SECONDS", 30, minimum=1)
PARTNERS_WEBHOOK_MAX_DELAY_SECONDS = env_int("PARTNERS_WEBHOOK_MAX_DELAY_SECONDS", 6 * 3600, minimum=1)
# Seconds to connect and to read an answer: a slow receiver costs a worker this long, never a request.
PARTNERS_WEBHOOK_CONNECT_TIMEOUT = env_int("PARTNERS_WEBHOOK_CONNECT_TIMEOUT", 3, minimum=1)
PARTNERS_WEBHOOK_READ_TIMEOUT = env_int("PARTNERS_WEBHOOK_READ_TIMEOUT", 5, minimum=1)
# How long the delivery log keeps delivered and failed deliveries.
PARTNERS_WEBHOOK_LOG_DAYS = env_int("PARTNERS_WEBHOOK_LOG_DAYS", 30, minimum=1)
# People named in one notification.requested webhook (a trigger's batch).
PARTNERS_TRIGGER_BATCH = env_int("PARTNERS_TRIGGER_BATCH", 500, minimum=1)

# --- Data-subject rights (rights/) -----------------------------------------------------------
# How long a person may cancel an erasure before it runs; a legal hold pauses it further.
RIGHTS_ERASURE_GRACE_HOURS = env_int("RIGHTS_ERASURE_GRACE_HOURS", 7 * 24, minimum=0)
# Who gets the daily digest of requests overdue or due within seven days (comma-separated).
RIGHTS_DIGEST_TO = env_list("RIGHTS_DIGEST_TO", [])
# Meta's data deletion callback deletes what Facebook brought (provider) or erases the person
# (account, through the rights app, with no grace period). docs/social-login.md.
SOCIAL_FACEBOOK_DELETION_SCOPE = env_choice("SOCIAL_FACEBOOK_DELETION_SCOPE", "provider", ("provider", "account"))

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text"))
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "vault.log.RequestIdFilter"},
        "personal_data": {"()": "vault.log.PersonalDataFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "personal_data"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own handlers so its lines get the same filters and format.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# Partners, reading people (docs/partners.md): how long a verified API key is trusted without
# looking it up again in one process (a revocation elsewhere takes effect within this), and how
# far behind now the changes feed stays so that acts still committing are never skipped.
PARTNER_CREDENTIAL_CACHE_SECONDS = env_int("PARTNER_CREDENTIAL_CACHE_SECONDS", 5, minimum=0)
PARTNER_CHANGES_SETTLE_SECONDS = env_int("PARTNER_CHANGES_SETTLE_SECONDS", 2, minimum=0)

# Staff (staff/people/): how long values a staff member revealed stay on their screen before the
# page hides them again (they are never stored in the session or the URL).
STAFF_REVEAL_SECONDS = env_int("STAFF_REVEAL_SECONDS", 60, minimum=5)
