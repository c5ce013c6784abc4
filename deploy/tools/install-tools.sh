#!/usr/bin/env bash
# Install the tools the deployment and foreign-client tests need, on a fresh machine:
#   kustomize            Go module proxy: go install sigs.k8s.io/kustomize/kustomize/v5
#   promtool, prometheus Debian's `prometheus` package, unpacked: only the two binaries are
#                        kept, so no prometheus user, service or daemon is created (the
#                        server is started by a test, scraping the services with the alert
#                        rules loaded)
#   kcat                 Debian's `kcat` package with its libraries (librdkafka1, libyajl2),
#                        unpacked under the tools folder; bin/kcat is a wrapper that points
#                        the loader at them. A plain Kafka client that is not the project's
#                        code, for the foreign-client test
#   kubernetes-validate  PyPI, into the project's virtualenv (offline Kubernetes schemas)
#   chromium             Debian's `chromium` package: the browser the console's end-to-end tests
#                        drive through Playwright (never `playwright install`: no download)
#   postgresql           Debian's `postgresql` package (server binaries, and the `postgres`
#                        user the test fixture runs a throwaway server as; tests/postgres_server.py
#                        starts it with initdb/pg_ctl on a free port in a temporary folder; the
#                        package's own cluster service is not needed)
#
# Binaries go to $REVOPS_TOOLS_DIR/bin (default: <repo>/.cache/tools/bin, git-ignored), where
# the tests look first. Idempotent: a tool already present at the pinned version is skipped.
# Non-interactive. Exits non-zero with a message naming the tool when an install fails.
set -euo pipefail

KUSTOMIZE_VERSION="v5.7.1"
KUBERNETES_VALIDATE_VERSION="1.37.0"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${REVOPS_TOOLS_DIR:-$REPO_ROOT/.cache/tools}"
BIN_DIR="$TOOLS_DIR/bin"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"

log() { echo "install-tools: $*"; }
die() {
    echo "install-tools: ERROR: $*" >&2
    exit 1
}

install_kustomize() {
    local bin="$BIN_DIR/kustomize"
    if [[ -x "$bin" ]] && "$bin" version 2>/dev/null | grep -qx "$KUSTOMIZE_VERSION"; then
        log "kustomize $KUSTOMIZE_VERSION already installed ($bin)"
        return
    fi
    command -v go >/dev/null || die "kustomize: Go is required (go install from the module proxy)"
    log "installing kustomize $KUSTOMIZE_VERSION with go install (a few minutes on 2 cores)"
    GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install \
        "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ||
        die "kustomize: go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION failed"
    "$bin" version | grep -qx "$KUSTOMIZE_VERSION" ||
        die "kustomize: installed binary does not report $KUSTOMIZE_VERSION"
}

# apt-get download PKG... into DIR (as apt's sandbox user when it may write there); refreshes
# stale package lists once.
apt_download() {
    local dir="$1"
    shift
    command -v apt-get >/dev/null || die "$1: apt-get (Debian) is required"
    chmod 0755 "$dir"
    if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$dir"; fi
    if ! (cd "$dir" && apt-get download -qq "$@"); then
        log "package lists look stale: apt-get update"
        apt-get update -qq || die "$1: apt-get update failed (run as root?)"
        (cd "$dir" && apt-get download -qq "$@") || die "$*: apt-get download failed"
    fi
}

install_prometheus_binaries() {
    local promtool="$BIN_DIR/promtool" server="$BIN_DIR/prometheus"
    if [[ -x "$promtool" ]] && "$promtool" --version >/dev/null 2>&1 &&
        [[ -x "$server" ]] && "$server" --version >/dev/null 2>&1; then
        log "promtool and prometheus already installed ($BIN_DIR)"
        return
    fi
    local work
    work="$(mktemp -d)"
    log "downloading Debian's prometheus package to extract promtool and prometheus"
    apt_download "$work" prometheus
    dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb |
        tar -x -C "$work" ./usr/bin/promtool ./usr/bin/prometheus ||
        die "promtool: could not extract usr/bin/promtool and usr/bin/prometheus from the package"
    install -m 0755 "$work/usr/bin/promtool" "$promtool"
    install -m 0755 "$work/usr/bin/prometheus" "$server"
    rm -rf "$work"
    "$promtool" --version >/dev/null || die "promtool: extracted binary does not run"
    "$server" --version >/dev/null || die "prometheus: extracted binary does not run"
}

install_kcat() {
    local bin="$BIN_DIR/kcat" root="$TOOLS_DIR/kcat"
    if [[ -x "$bin" ]] && "$bin" -V >/dev/null 2>&1; then
        log "kcat already installed ($bin)"
        return
    fi
    local work libdir
    work="$(mktemp -d)"
    log "downloading Debian's kcat package and its libraries"
    apt_download "$work" kcat librdkafka1 libyajl2
    rm -rf "$root"
    mkdir -p "$root"
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$root" || die "kcat: could not unpack $(basename "$deb")"
    done
    rm -rf "$work"
    libdir="$(dirname "$(find "$root/usr/lib" -name 'librdkafka.so.1' | head -n 1)")"
    [[ -x "$root/usr/bin/kcat" && -f "$libdir/librdkafka.so.1" ]] ||
        die "kcat: the unpacked packages hold no usr/bin/kcat or librdkafka.so.1"
    cat >"$bin" <<WRAPPER
#!/bin/sh
# kcat from Debian, unpacked by deploy/tools/install-tools.sh with its own libraries.
LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$root/usr/bin/kcat" "\$@"
WRAPPER
    chmod 0755 "$bin"
    "$bin" -V >/dev/null || die "kcat: the unpacked binary does not run"
}

install_kubernetes_validate() {
    [[ -x "$PYTHON" ]] || die "kubernetes-validate: no Python at $PYTHON (create .venv first)"
    if "$PYTHON" - "$KUBERNETES_VALIDATE_VERSION" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if version("kubernetes-validate") == sys.argv[1] else 1)
EOF
        log "kubernetes-validate $KUBERNETES_VALIDATE_VERSION already installed"
        return
    fi
    log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ||
        die "kubernetes-validate: pip install failed"
}

# apt-get install PKG (as root; refreshes stale package lists once). Not root: a warning and
# status 1 (the tests that need it fail in CI, which runs as root, and skip elsewhere).
apt_install() {
    local package="$1" purpose="$2"
    command -v apt-get >/dev/null || die "$package: apt-get (Debian) is required"
    if [[ $EUID -ne 0 ]]; then
        log "WARNING: $package is missing and this is not root: sudo apt-get install $package"
        return 1
    fi
    log "installing Debian's $package ($purpose)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; then
        apt-get update -qq || die "$package: apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null ||
            die "$package: apt-get install $package failed"
    fi
}

install_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        log "chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
        return
    fi
    apt_install chromium "browser tests" || return 0
    [[ -x /usr/bin/chromium ]] || die "chromium: /usr/bin/chromium missing after the install"
}

postgres_binaries() {
    command -v pg_ctl >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

install_postgresql() {
    if postgres_binaries && id postgres >/dev/null 2>&1; then
        log "postgresql already installed ($(compgen -G '/usr/lib/postgresql/*/bin' | tail -n 1))"
        return
    fi
    apt_install postgresql "store tests on the PostgreSQL engine" || return 0
    postgres_binaries || die "postgresql: no pg_ctl after the install"
    id postgres >/dev/null 2>&1 || die "postgresql: the package created no postgres user"
}

mkdir -p "$BIN_DIR"
install_kustomize
install_prometheus_binaries
install_kcat
install_kubernetes_validate
install_chromium
install_postgresql
log "ready: $BIN_DIR/{kustomize,promtool,prometheus,kcat}, kubernetes-validate in $PYTHON"
