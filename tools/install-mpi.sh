#!/usr/bin/env bash
# Installs what the optional `mpi` cargo feature needs, from Debian's packages: Open MPI (the
# `mpirun` launcher, the library and its headers) and libclang (the `mpi` crate generates its
# bindings with bindgen). Does nothing when they are already installed.
set -euo pipefail
packages=(openmpi-bin libopenmpi-dev libclang-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
