"""The workers' side of the web app: requests from analysis flows carry the secret the web app
and the workers share (`POSER_INTERNAL_SECRET`) in `contract.SECRET_HEADER`."""

from __future__ import annotations

import hmac

from flask import abort, current_app, request

from tasks.contract import SECRET_HEADER


def require_worker_secret() -> None:
    """403 unless the request carries the workers' secret; a blueprint's `before_request`.

    The workers' reports (a results summary) may be larger than the public API's bodies, so
    their body limit is raised once the secret checks out.
    """
    expected = current_app.config["INTERNAL_SECRET"]
    sent = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, "Internal endpoint.")
    request.max_content_length = current_app.config["INTERNAL_MAX_CONTENT_LENGTH"]
