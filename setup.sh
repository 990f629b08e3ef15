#!/usr/bin/env bash
# Set up vitswin in ./.venv (created when missing): the package, pinned PyTorch, and with --dev the test tools
# (pytest, pytest-xdist, Hypothesis, ruff), the export and hf extras, and Chromium for the report's rendering test (from
# Debian's packages when it is missing).
set -euo pipefail
cd "$(dirname "$0")"
extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
if [ ! -x .venv/bin/python ]; then "${PYTHON:-python3}" -m venv .venv; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
.venv/bin/python -c "import vitswin.cli" # fail here, not later, when the install is broken

if [ -n "$extras" ] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  as_root=""
  if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
  if [ -z "$as_root" ] || command -v sudo >/dev/null; then
    $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium >/dev/null \
      || echo "setup: could not install chromium; the report rendering test will be skipped." >&2
  else
    echo "setup: chromium is missing and there is no root or sudo to install it; the rendering test will be skipped." >&2
  fi
fi
