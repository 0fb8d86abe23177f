#!/bin/sh
# The web image's entrypoint: before gunicorn starts, brings the database schema up to date
# (set MIGRATE_ON_START=0 where something else runs `flask --app webapp db upgrade`, e.g. on
# all but one of several replicas); then runs the command it was given, gunicorn by default.
set -eu

if [ "${1:-}" = "gunicorn" ] && [ "${MIGRATE_ON_START:-1}" = "1" ]; then
  flask --app webapp db upgrade
fi
exec "$@"
