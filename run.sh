#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv with the pinned dependencies when needed, then
#   ./run.sh repro [dvc repro args]   builds the pipeline (dvc repro; the embedded demo corpus by default)
#   ./run.sh test  [pytest args]      runs the tests
#   ./run.sh <command ...>            runs any command inside the environment (dvc dag, python -m ..., ...)
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
stamp="$venv/.requirements.lock"
if [ ! -x "$venv/bin/python" ] || ! cmp -s requirements.lock "$stamp"; then
  python=$(command -v python3.11 || command -v python3)
  "$python" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
  echo "setting up $venv with the pinned dependencies (requirements.lock)..." >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r requirements.lock
  # the project itself, editable, for the `enhance` command (setuptools ships with Python 3.11's venv)
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  cp requirements.lock "$stamp"
fi

export PATH="$PWD/$venv/bin:$PATH"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"   # Prefect state stays in the project, not in ~/.prefect

case "${1:-}" in
  repro) shift; exec dvc repro "$@" ;;
  test)  shift; exec python -m pytest "$@" ;;
  "")    echo "usage: ./run.sh repro | test | <command ...>" >&2; exit 2 ;;
  *)     exec "$@" ;;
esac
