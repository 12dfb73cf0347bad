#!/usr/bin/env bash
# Makes sure the browser tests (tests/web) have Debian's chromium and CJK fonts.
# Installs them with apt-get only when missing; silent when everything is already there.
# Never downloads a browser from anywhere but the Debian archive (no `playwright install`).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGES=(chromium fonts-noto-cjk)

have_fonts() {
    dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'install ok installed'
}

if [[ -x "$CHROMIUM" ]] && have_fonts; then
    exit 0
fi

fail() {
    echo "ensure-browser: $*" >&2
    echo "ensure-browser: the browser tests need Debian's chromium at $CHROMIUM and fonts-noto-cjk;" >&2
    echo "ensure-browser: install them with: apt-get update && apt-get install -y ${PACKAGES[*]}" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (not a Debian/Ubuntu machine?)"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and sudo is not available"
    SUDO=(sudo -n)
fi

log=$(mktemp -t ensure-browser.XXXXXX.log)
trap 'rm -f "$log"' EXIT
echo "ensure-browser: installing ${PACKAGES[*]} with apt-get (one-time)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -qq >>"$log" 2>&1; then
    cat "$log" >&2
    fail "apt-get update failed"
fi
if ! "${SUDO[@]}" apt-get install -y -qq "${PACKAGES[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    fail "apt-get install ${PACKAGES[*]} failed"
fi
[[ -x "$CHROMIUM" ]] || fail "apt-get succeeded but $CHROMIUM is still missing"
have_fonts || fail "apt-get succeeded but fonts-noto-cjk is not installed"
"$CHROMIUM" --version >/dev/null 2>&1 || fail "$CHROMIUM does not run: $("$CHROMIUM" --version 2>&1 | tail -n 3)"
