#!/usr/bin/env bash
# Install the Debian packages radbridge's tests and demo use as real peers:
#   orthanc + orthanc-dicomweb (the PACS), dcmtk (storescu/storescp/dcmdump/dsrdump),
#   libpixelmed-java (SR/SEG validators) and a headless JDK to run it (the batch
#   validator in tests/peers/java is a single-file source program, so it needs the JDK's
#   jdk.compiler module, not only a JRE). python3-venv is added if ensurepip is missing,
#   openssl if its command is (the TLS tests make their own certificates with it),
#   nodejs + npm if missing (dcmjs, OHIF's DICOM library, reads our files in the tests),
#   strace (the durability tests trace a receiver's system calls) and chromium (OHIF's SEG
#   load path runs in it headless).
# Idempotent: installs only what is missing and skips `apt-get update` when nothing is.
# Uses sudo only when not root. Debian 12 (bookworm) is the reference platform.
set -euo pipefail

log() { printf 'install-system: %s\n' "$*"; }

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in orthanc orthanc-dicomweb dcmtk libpixelmed-java; do
    if is_installed "$pkg"; then
        log "$pkg already installed"
    else
        missing+=("$pkg")
    fi
done

if command -v java >/dev/null 2>&1 && java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@'; then
    log "a JDK with jdk.compiler is already available ($(command -v java))"
else
    missing+=(default-jdk-headless)
fi

if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi

# strace checks the order of a real receiver's system calls (fsync before Success) in
# tests/gateway/test_durability.py.
if ! command -v strace >/dev/null 2>&1; then
    missing+=(strace)
fi

# Node and npm run dcmjs (OHIF's DICOM library) in the interop tests (tests/js).
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi

# Debian's Chromium runs OHIF's SEG load path headless in tests/seg/test_seg_ohif_browser.py
# (playwright-core drives it; no browser is downloaded).
if ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    log "nothing to install"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "missing: ${missing[*]}, and apt-get is not available; install them by hand" >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        log "missing: ${missing[*]}; not root and sudo is not available" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
log "installing: ${missing[*]}"
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
log "installed: ${missing[*]}"
