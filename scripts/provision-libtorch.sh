#!/usr/bin/env bash
# Installs libtorch for st-native: torch==2.11.0 from PyPI into the project-local
# virtual environment .venv/ (the CUDA-enabled wheel also runs on CPU).
# Idempotent: does nothing when .venv already imports torch 2.11.0.
set -euo pipefail
cd "$(dirname "$0")/.."
want=2.11.0
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" = "$want" ]; then
  echo "provision-libtorch: .venv already has torch $want"
  exit 0
fi
python=${ST_NATIVE_PYTHON:-python3}
command -v "$python" >/dev/null || { echo "provision-libtorch: $python not found (Python 3.9-3.13 is needed to fetch libtorch)" >&2; exit 1; }
"$python" -m venv .venv
.venv/bin/pip install --disable-pip-version-check --no-input "torch==$want"
.venv/bin/python -c "import torch; assert torch.__version__.split('+')[0] == '$want', torch.__version__; print('provision-libtorch: torch', torch.__version__, 'in .venv')"
