#!/usr/bin/env bash
# Installs PyTorch 2.11.0 from PyPI into the project-local virtual environment
# .venv/ (ST_NATIVE_VENV_DIR to put it elsewhere): the libtorch a source build
# links, and the Python torch that the parity check and the benchmark import.
#
# Flavour: ST_NATIVE_TORCH_FLAVOR=cpu|cuda; by default cuda where an NVIDIA
# driver is loaded (/proc/driver/nvidia or /dev/nvidiactl), else cpu.
#   cuda  torch==2.11.0 with all its dependencies: about 2.7 GB to download,
#         4.5 GB on disk.
#   cpu   the same wheel with only what `import torch` loads. Its
#         libtorch_python.so links libtorch_cuda.so, which links cuBLAS, cuDNN,
#         cuFFT, cuRAND, cuSPARSE, cuSPARSELt, cuFile, NCCL and NVSHMEM, so
#         those stay (there is no CPU-only torch on PyPI); Triton, NVRTC,
#         cuSOLVER, NVTX and cuda-bindings, used only to compile or run CUDA
#         kernels, are left out: about 2.2 GB to download, 3.4 GB on disk.
#         (st-native itself needs much less at run time: `st-native setup --cpu`.)
# Idempotent: does nothing when the venv already imports torch 2.11.0 of a
# flavour that serves this host; a cpu venv is completed in place for cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
want=2.11.0
venv=${ST_NATIVE_VENV_DIR:-.venv}

if [ -n "${ST_NATIVE_TORCH_FLAVOR:-}" ]; then
  flavor=$ST_NATIVE_TORCH_FLAVOR
  why="ST_NATIVE_TORCH_FLAVOR=$flavor"
elif [ -e /proc/driver/nvidia ] || [ -e /dev/nvidiactl ]; then
  flavor=cuda
  why="an NVIDIA driver is loaded"
else
  flavor=cpu
  why="no NVIDIA driver (no /proc/driver/nvidia, no /dev/nvidiactl)"
fi
case $flavor in cpu | cuda) ;; *) echo "provision-libtorch: ST_NATIVE_TORCH_FLAVOR must be cpu or cuda, not '$flavor'" >&2; exit 1 ;; esac

marker=$venv/st-native-torch-flavor
if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" = "$want" ]; then
  # No marker: a venv from before flavours, always a full install.
  have=$(cat "$marker" 2>/dev/null || echo cuda)
  if [ "$flavor" = cpu ] || [ "$have" = cuda ]; then
    echo "provision-libtorch: $venv already has torch $want ($have)"
    exit 0
  fi
fi

python=${ST_NATIVE_PYTHON:-python3}
command -v "$python" >/dev/null || { echo "provision-libtorch: $python not found (Python 3.10-3.14 is needed to fetch libtorch)" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/pip" install --disable-pip-version-check --no-input --no-compile)
echo "provision-libtorch: installing torch $want ($flavor: $why) into $venv"
if [ "$flavor" = cuda ]; then
  "${pip[@]}" "torch==$want"
else
  # torch 2.11.0's own requirements (its METADATA), less the CUDA packages
  # named above. Dependencies first, so that pip's resolver never sees a
  # torch whose other requirements are deliberately missing.
  "${pip[@]}" \
    'cuda-toolkit[cudart,cupti,cublas,cufft,cufile,curand,cusparse,nvjitlink]==13.0.2' \
    'nvidia-cudnn-cu13==9.19.0.56' 'nvidia-cusparselt-cu13==0.8.0' 'nvidia-nccl-cu13==2.28.9' 'nvidia-nvshmem-cu13==3.4.5' \
    filelock 'typing-extensions>=4.10.0' 'setuptools<82' 'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5'
  "${pip[@]}" --no-deps "torch==$want"
fi
# --no-compile above skips byte-compiling all of torch (about 15 s); this
# check compiles just what the parity check and the benchmark import, even
# where PYTHONDONTWRITEBYTECODE is set (each later import then saves ~1.3 s).
env -u PYTHONDONTWRITEBYTECODE "$venv/bin/python" -W ignore -c "import torch, torch.nn.functional, torch.optim; assert torch.__version__.split('+')[0] == '$want', torch.__version__; torch.randn(3, dtype=torch.float64).sum(); print('provision-libtorch: torch', torch.__version__, 'in $venv')"
echo "$flavor" > "$marker"
