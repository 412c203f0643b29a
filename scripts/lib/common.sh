# Shared by the scripts: where things are, and the one package list.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PYTHON=/usr/bin/python3   # Debian's interpreter: the one with pytest, pandas, confluent_kafka, psycopg2
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The packages of a list in deps/: debian-packages.txt (the default: everything the project needs) or another.
debian_packages() { grep -v '^\s*#' "$ROOT/deps/${1:-debian-packages.txt}" | grep -v '^\s*$'; }
