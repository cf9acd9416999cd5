#!/usr/bin/env bash
# Sourced by the benchmark scripts: makes sure the git-ignored venv .venv-bench holds the
# pinned PyTorch reference (scripts/requirements-bench.txt) and sets PY to its python.
# PyTorch is NOT a dependency of the project; the PyPI wheel is the CUDA build (~3.7 GB,
# only the CPU is used).
ensure_bench_venv() {
    local root=$1 log=${2:-echo}
    local venv="$root/.venv-bench" req="$root/scripts/requirements-bench.txt"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$log" "creating venv $venv"
        python3 -m venv "$venv"
    fi
    PY="$venv/bin/python"
    local torch_pin numpy_pin
    torch_pin=$(sed -n 's/^torch==//p' "$req")
    numpy_pin=$(sed -n 's/^numpy==//p' "$req")
    if "$PY" - "$torch_pin" "$numpy_pin" <<'PYEOF' 2>/dev/null
import sys, torch, numpy
ok = torch.__version__.split("+")[0] == sys.argv[1] and numpy.__version__ == sys.argv[2]
sys.exit(0 if ok else 1)
PYEOF
    then
        "$log" "torch $torch_pin / numpy $numpy_pin already installed in $venv"
    else
        "$log" "installing $(tr '\n' ' ' < "$req")into $venv (torch wheel is ~3.7 GB)"
        "$PY" -m pip install --disable-pip-version-check -r "$req"
    fi
}
