"""Web app settings: these defaults, then `POSER_*` environment variables, then test overrides."""

from __future__ import annotations

DEFAULTS = {
    # Sign cookies and tokens. The default is for a laptop only; production sets POSER_SECRET_KEY.
    "SECRET_KEY": "dev-only-insecure-secret",
    # SQLite in the instance folder by default; production sets a postgresql+psycopg:// URL.
    "SQLALCHEMY_DATABASE_URI": None,
    # `console` prints mail to the log; `smtp` sends it through SMTP_HOST.
    "MAIL_BACKEND": "console",
    "MAIL_FROM": "Poser <no-reply@poser.local>",
    # Where contact-form messages go.
    "CONTACT_EMAIL": "operators@poser.local",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": False,
    # Sign-in codes: lifetime, wrong tries allowed, and how many may be requested per window.
    "LOGIN_CODE_TTL_S": 600,
    "LOGIN_CODE_MAX_TRIES": 5,
    "LOGIN_CODE_WINDOW_S": 600,
    "LOGIN_CODES_PER_EMAIL": 3,
    "LOGIN_CODES_PER_CLIENT": 10,
    # Bearer tokens for API clients.
    "API_TOKEN_TTL_S": 30 * 24 * 3600,
    # Session cookie: never readable by scripts, only over HTTPS, not sent on cross-site posts.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
    # Object storage: `local` (a folder, default instance/storage, with signed URLs) or `s3`
    # (any endpoint; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    "STORAGE_BACKEND": "local",
    "STORAGE_ROOT": None,
    "S3_BUCKET": "poser",
    "S3_ENDPOINT_URL": None,
    "S3_REGION": "us-east-1",
    # Uploads: accepted types, size limit, longest trim window, and how long upload and
    # download links stay valid.
    "UPLOAD_TYPES": {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"},
    "MAX_UPLOAD_BYTES": 500 * 1024 * 1024,
    "MAX_TRIM_S": 600,
    "UPLOAD_URL_TTL_S": 3600,
    # Analyses still awaiting their upload this long after the link expired are removed.
    "UPLOAD_GRACE_S": 3600,
    "DOWNLOAD_URL_TTL_S": 300,
    # Partner widget: how long the emailed "Confirm and start" link works, and how many clips
    # one email address, or one client address, may submit per window.
    "EMBED_CONFIRM_TTL_S": 24 * 3600,
    "EMBED_RATE_WINDOW_S": 3600,
    "EMBED_SUBMITS_PER_EMAIL": 5,
    "EMBED_SUBMITS_PER_CLIENT": 20,
    # Shared with the workers; their flows report through /api/internal with it. Unset: disabled.
    "INTERNAL_SECRET": None,
    # The Prefect deployment that analyses an upload.
    "ANALYSIS_DEPLOYMENT": "analyze-video/analyze-video",
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    "TRUSTED_PROXIES": 0,
}
