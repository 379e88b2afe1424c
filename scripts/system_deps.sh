#!/usr/bin/env bash
# Check (and on Debian/Ubuntu as root, install) what pycairo and manimpango need to build: they have no Linux
# wheels, so pip compiles them against cairo and pango; and espeak-ng, the offline voice of narrated videos. With
# `--test`, also Chromium, which the gallery test opens headless. Called by `make`; exits non-zero with the exact fix.
set -euo pipefail
PY=${1:-python3}
missing=()
if [ "${2:-}" = "--test" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
fi
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)  # the offline voice of narrated videos
if command -v pkg-config >/dev/null 2>&1; then
  pkg-config --exists cairo || missing+=(libcairo2-dev)
  pkg-config --exists pangocairo || missing+=(libpango1.0-dev)
fi
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
"$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
"$PY" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(uname -s)" = Darwin ]; then
  echo "Missing build dependencies. Install them with:" >&2
  echo "  brew install cairo pango pkg-config espeak-ng   (and Chromium for the gallery test)" >&2
  exit 1
fi
cmd="apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && $cmd
else
  echo "Missing system packages: ${missing[*]} (pycairo and manimpango compile against cairo and pango;" >&2
  echo "espeak-ng speaks narration)." >&2
  echo "Install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
