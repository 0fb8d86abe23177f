# syntax=docker/dockerfile:1
#
# Poser's web app: gunicorn serving the Flask app on port 8000, installed with the `web` extra
# only (no torch, OpenCV or MediaPipe). Built from the repository root:
#
#   docker build -f deployments/web.Dockerfile -t poser-web .
#
# and run with its settings (deployments/README.md lists them):
#
#   docker run -d -p 8000:8000 -e POSER_SECRET_KEY=... -e POSER_INTERNAL_SECRET=... \
#       -e POSER_PUBLIC_URL=https://poser.example -e POSER_SQLALCHEMY_DATABASE_URI=... \
#       -e PREFECT_API_URL=... poser-web
#
# Without the two secrets (random, 32+ characters) and the public URL it exits at once with a
# message saying what to set. Otherwise it brings the database schema up to date, then starts
# gunicorn (deployments/web-entrypoint.sh) with webapp/gunicorn_conf.py: no Server header, no
# tokens in the access log.

FROM python:3.11-slim-bookworm

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv \
 && pip install --upgrade pip

# The dependencies first, read from pyproject.toml alone (the base list and the `web` extra),
# so that a change to the code does not reinstall them.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c 'import tomllib; p = tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["web"]))' > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt /tmp/pyproject.toml

# The app, installed as a wheel (with its templates, static files and migrations) from the
# source mounted for this step only.
RUN --mount=type=bind,target=/tmp/poser,rw \
    pip install --no-deps /tmp/poser \
 && pip check

COPY --chmod=755 deployments/web-entrypoint.sh /usr/local/bin/poser-web-entrypoint

# The same uid as the worker image, so that a storage folder shared with the workers
# (/srv/poser/storage, mounted in both) stays readable by both. The instance folder is Flask's
# for this install (the SQLite default, unused once POSER_SQLALCHEMY_DATABASE_URI is set).
RUN useradd --create-home --uid 10001 --user-group poser \
 && install -d -o poser -g poser /srv/poser/storage /home/poser/.prefect /opt/venv/var/webapp-instance
USER poser
WORKDIR /home/poser

# Local storage, where POSER_STORAGE_BACKEND is not `s3`, lives in the shared folder. gunicorn
# runs WEB_CONCURRENCY processes; GUNICORN_CMD_ARGS adds options (`--threads 4` by default).
ENV POSER_STORAGE_ROOT=/srv/poser/storage \
    WEB_CONCURRENCY=2 \
    GUNICORN_CMD_ARGS="--threads 4"

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

ENTRYPOINT ["poser-web-entrypoint"]
CMD ["gunicorn", "--config", "python:webapp.gunicorn_conf", "--bind", "0.0.0.0:8000", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-", "webapp:create_app()"]
