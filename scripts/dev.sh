#!/usr/bin/env bash
# radbridge developer entry point (the README's two commands):
#   bash scripts/dev.sh demo               install everything, then run `radbridge demo`
#   bash scripts/dev.sh test [pytest args] install everything, then ruff, mypy and pytest
#   bash scripts/dev.sh docs [mkdocs args]  install everything, then build the site (strict) into site/
# "Install everything" = Debian peers (scripts/install-system.sh), a .venv next to the
# checkout, `pip install -e '.[test]'`, and dcmjs in tests/js (`npm ci` from the lock
# file). Works from any directory.
# Environment: PYTHON (interpreter used to create .venv, default python3),
# RADBRIDGE_SKIP_SYSTEM=1 (skip install-system.sh, e.g. without sudo rights).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"

say() { printf '\n==> %s\n' "$*"; }

usage() {
    echo "usage: bash scripts/dev.sh demo [demo args] | test [pytest args] | docs [mkdocs build args]" >&2
    exit 2
}

install_all() {
    if [ "${RADBRIDGE_SKIP_SYSTEM:-0}" = 1 ]; then
        say "skipping system packages (RADBRIDGE_SKIP_SYSTEM=1)"
    else
        say "system packages (scripts/install-system.sh)"
        bash "$root/scripts/install-system.sh"
    fi

    local python="${PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
        say "creating .venv with $python"
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            echo "radbridge needs Python >= 3.11 (got $("$python" -V 2>&1)); set PYTHON=" >&2
            exit 1
        }
        "$python" -m venv "$venv"
    fi

    # Re-install only when the dependency list changed since the last successful install.
    local stamp="$venv/.radbridge-install-stamp" want
    want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/radbridge" ]; then
        say "python packages up to date (.venv)"
    else
        say "pip install -e '.[test]' into .venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
        echo "$want" >"$stamp"
    fi

    install_js

    if [ ! -f "$root/../shared/interop/MANIFEST.tsv" ]; then
        echo "warning: ../shared/interop (third-party test files) is not beside the" \
            "checkout at $root/..; interop tests will fail" >&2
    fi
}

# dcmjs and @cornerstonejs/adapters (what OHIF and Cornerstone use) are outside readers in the tests:
# installed into tests/js/node_modules from the committed lock file, never at run time.
install_js() {
    local js="$root/tests/js" stamp want
    if ! command -v npm >/dev/null 2>&1; then
        echo "warning: npm not found; the dcmjs interop tests will fail" \
            "(scripts/install-system.sh installs nodejs and npm)" >&2
        return 0
    fi
    stamp="$js/node_modules/.radbridge-install-stamp"
    want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "dcmjs up to date (tests/js)"
    else
        say "npm ci in tests/js (dcmjs and the Cornerstone3D adapters, test-only)"
        (cd "$js" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
        echo "$want" >"$stamp"
    fi
}

run_demo() {
    install_all
    say "radbridge demo $*"
    exec "$venv/bin/radbridge" demo "$@"
}

run_docs() {
    install_all
    say "mkdocs build --strict $* (site/)"
    NO_MKDOCS_2_WARNING=1 exec "$venv/bin/mkdocs" build --strict --config-file "$root/mkdocs.yml" "$@"
}

run_tests() {
    install_all
    local failed=()
    say "ruff check"
    "$venv/bin/ruff" check "$root" || failed+=("ruff check")
    say "ruff format --check"
    "$venv/bin/ruff" format --check "$root" || failed+=("ruff format")
    say "mypy src (strict, config in pyproject.toml)"
    "$venv/bin/mypy" "$root/src" || failed+=("mypy")
    say "pytest $*"
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@" || failed+=("pytest")
    # Forked encoding is only chosen (and safe) in a single-threaded process; the suite
    # above starts servers and threads, so these tests also run in a fresh process.
    say "pytest tests/test_pixels_parallel.py (single-threaded process)"
    RADBRIDGE_REQUIRE_FORK=1 "$venv/bin/python" -m pytest -p no:cacheprovider -q \
        "$root/tests/test_pixels_parallel.py" || failed+=("pytest (fork)")

    if [ "${#failed[@]}" -gt 0 ]; then
        say "FAILED: ${failed[*]}"
        exit 1
    fi
    say "all checks passed"
}

[ "$#" -ge 1 ] || usage
mode="$1"
shift
case "$mode" in
    demo) run_demo "$@" ;;
    test) run_tests "$@" ;;
    docs) run_docs "$@" ;;
    *) usage ;;
esac
