#!/usr/bin/env bash
# Set up llmsetup in .venv and run its main job on the embedded demo recipe:
# environment check, torch check, a tiny chat model generated locally, verification.
# CPU only, no model download.  Extra arguments go to `llmsetup install demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[runtime]' 'torch==2.13.0'
exec .venv/bin/llmsetup install demo "$@"
