#!/usr/bin/env bash
# Install headless Chromium from Debian's packages for the dashboard's browser test
# (tests/serving/test_dashboard_browser.py). Nothing is downloaded outside the package manager:
# no Playwright/Puppeteer browser builds. Safe to run repeatedly; a no-op when Chromium exists.
#   make target / CI:  bash plugins/customer_warehouse/serving/install_browser.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium present: $(chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install Chromium yourself and set CW_CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# other jobs on the machine may hold the dpkg lock for a while: wait for it instead of failing
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo unknown version)"
