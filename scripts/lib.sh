# Shared by scripts/run and scripts/test: install or start what the stack needs.
# Sourced, not run.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; return 1
    fi
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

need_cargo() {
    if ! command -v cargo >/dev/null; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null || { log "cargo is missing: install Rust (rustup) first"; exit 1; }
}

need_ffmpeg() {
    if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
        log "installing ffmpeg (Debian package)"
        apt_install ffmpeg
    fi
    # The transcoder starts ffmpeg and ffprobe under their memory and CPU caps with prlimit.
    command -v prlimit >/dev/null || apt_install util-linux
}

# cargo-fuzz (crates.io) for scripts/fuzz; it runs on the stable toolchain (see there).
need_cargo_fuzz() {
    if ! command -v cargo-fuzz >/dev/null; then
        log "installing cargo-fuzz (cargo install, about a minute)"
        cargo install --locked cargo-fuzz
    fi
}

# cargo-tarpaulin (crates.io) for scripts/coverage: its LLVM engine reads the counters itself,
# so it needs no llvm-tools component (rustup cannot download one here) and no system LLVM
# (Debian's 16 cannot read rustc's LLVM 22 profiles).
TARPAULIN_VERSION=0.37.5
need_tarpaulin() {
    if ! cargo tarpaulin --version 2>/dev/null | grep -q " $TARPAULIN_VERSION\$"; then
        log "installing cargo-tarpaulin $TARPAULIN_VERSION (cargo install, about five minutes, once)"
        cargo install --locked --version "$TARPAULIN_VERSION" cargo-tarpaulin
    fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Waits up to $3 seconds for host $1 port $2 to accept connections.
wait_port() {
    local deadline=$((SECONDS + $3))
    until port_open "$1" "$2"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}

need_rabbitmq() {
    # Only the default local broker is ours to start; a custom URL is the caller's business.
    if [ -n "${HOPSTER__AMQP__URL:-}" ] && [[ "$HOPSTER__AMQP__URL" != *"127.0.0.1:5672"* ]]; then return 0; fi
    port_open 127.0.0.1 5672 && return 0
    if ! command -v rabbitmq-server >/dev/null; then
        log "installing RabbitMQ (Debian package rabbitmq-server)"
        apt_install rabbitmq-server
    fi
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_port 127.0.0.1 5672 90 || { log "RabbitMQ did not come up on 127.0.0.1:5672"; exit 1; }
    # The port opens before the broker accepts logins; wait for the app itself.
    if command -v rabbitmqctl >/dev/null; then as_root rabbitmqctl -q await_startup >/dev/null 2>&1 || true; fi
}

# The suite needs room: the debug build (about 4.5 GiB in target/), the stand-in images and the
# compose stack's images (about 4 GiB in Docker), the venvs and the fuzz builds. A machine with
# less is told so up front, instead of by a compiler that cannot write its output.
check_disk() {
    local free_kb
    free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
    if [ "${free_kb:-0}" -lt $((12 * 1024 * 1024)) ]; then
        log "warning: $((free_kb / 1024)) MiB free on $(df -P . | awk 'NR == 2 { print $6 }'); the suite needs about 12 GiB"
    fi
}

# The image docker-compose.yml names for `$1` (a repository: rabbitmq, localstack/localstack).
compose_image() { sed -n "s|^ *image: *\($1:[^ #]*\).*|\1|p" docker-compose.yml; }

# The web page tests drive Debian's chromium through Debian's chromium-driver (WebDriver).
need_chromium() {
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        log "installing chromium and chromium-driver (Debian packages) for the web page tests"
        apt_install chromium chromium-driver
    fi
}

# The compose test needs a Docker engine (not installed here: it is the machine's) and a
# Compose tool: the v2 plugin, or Debian's docker-compose (1.29) when there is none.
need_compose() {
    command -v docker >/dev/null && docker info >/dev/null 2>&1 \
        || { log "the compose test needs a running Docker engine (docker info failed)"; exit 1; }
    if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
        log "installing docker-compose (Debian package)"
        apt_install docker-compose
    fi
}
