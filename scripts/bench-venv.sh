#!/usr/bin/env bash
# Sourced by the benchmark scripts: makes sure the git-ignored venv .venv-bench holds the
# pinned PyTorch reference and the Python inference server's FastAPI + uvicorn
# (scripts/requirements-bench.txt) and sets PY to its python.
# None of them is a dependency of the project; the PyPI wheel is the CUDA build (~3.7 GB,
# only the CPU is used).
ensure_bench_venv() {
    local root=$1 log=${2:-echo}
    local venv="$root/.venv-bench" req="$root/scripts/requirements-bench.txt"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$log" "creating venv $venv"
        python3 -m venv "$venv"
    fi
    PY="$venv/bin/python"
    # Every `name==version` pin of the requirements file, installed at that version?
    if "$PY" - "$req" <<'PYEOF' 2>/dev/null
import importlib.metadata as md, re, sys
ok = True
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line.strip())
    if not m:
        continue
    try:
        ok &= md.version(m.group(1)).split("+")[0] == m.group(3)
    except md.PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
PYEOF
    then
        "$log" "$(tr '\n' ' ' < "$req")already installed in $venv"
    else
        "$log" "installing $(tr '\n' ' ' < "$req")into $venv (torch wheel is ~3.7 GB)"
        "$PY" -m pip install --disable-pip-version-check -r "$req"
    fi
}
