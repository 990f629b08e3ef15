#!/usr/bin/env bash
# Set up vitswin in ./.venv (created when missing): the package, pinned PyTorch, and with --dev the test tools.
set -euo pipefail
cd "$(dirname "$0")"
extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
if [ ! -x .venv/bin/python ]; then "${PYTHON:-python3}" -m venv .venv; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
.venv/bin/python -c "import vitswin.cli" # fail here, not later, when the install is broken
