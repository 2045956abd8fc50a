#!/usr/bin/env bash
# Installs the Debian packages the test suite needs and does nothing when they are already there:
#   postgresql   a real PostgreSQL the integration tests start on loopback (as the postgres user)
#   chromium     the browser the Playwright tests (tests/browser) drive, with fonts to render the pages
#   java 17      the JVM PyFlink starts for the Flink SQL differential test (deploy/flink/)
#   prometheus   for promtool: tests/deploy checks the alert rules (`promtool test rules`) and every
#                dashboard query of deploy/observability
#   fonts-noto-core, fonts-droid-fallback, fonts-nanum
#                the Unicode fonts ticket PDFs embed for holder names in Cyrillic, Devanagari, Chinese,
#                Japanese and Korean (src/boxoffice/tickets/pdf.py; the image installs them too)
# (kubectl, hadolint, checkov and the schema validators of tests/deploy come from PyPI: pyproject.toml.)
set -euo pipefail

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf ] || need+=(fonts-noto-core)
[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || need+=(fonts-droid-fallback)
[ -f /usr/share/fonts/truetype/nanum/NanumGothic.ttf ] || need+=(fonts-nanum)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v promtool >/dev/null || need+=(prometheus)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's prometheus package may start a server of its own; the tests only need promtool.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true
fi
# The package may start a cluster of its own; the tests start theirs on a free port and need none.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | while read -r version cluster _; do
    pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
  done
fi
