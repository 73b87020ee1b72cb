# syntax=docker/dockerfile:1
# One multi-stage build for the three services: `docker build --target api-gateway .` (and
# downloader-worker, transcoder-worker). docker-compose.yml builds each target.

ARG RUST_VERSION=1.95.0
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Dependencies first: every member's manifest with stub sources, built once, so this layer is
# rebuilt only when a manifest or Cargo.lock changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY shared-proto/Cargo.toml shared-proto/
COPY common/Cargo.toml common/
COPY api-gateway/Cargo.toml api-gateway/
COPY downloader-worker/Cargo.toml downloader-worker/
COPY transcoder-worker/Cargo.toml transcoder-worker/
COPY e2e/Cargo.toml e2e/
COPY cli/Cargo.toml cli/
RUN for crate in shared-proto common api-gateway downloader-worker transcoder-worker e2e cli; do \
        mkdir -p "$crate/src" && echo 'fn main() {}' > "$crate/src/main.rs" && touch "$crate/src/lib.rs"; \
    done \
    && cargo build --release --locked --bin api-gateway --bin downloader-worker --bin transcoder-worker \
    && rm -rf shared-proto common api-gateway downloader-worker transcoder-worker e2e cli
COPY . .
# COPY keeps the sources' old timestamps; touch them so cargo rebuilds over the stubs.
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin api-gateway --bin downloader-worker --bin transcoder-worker

FROM debian:bookworm-slim AS runtime
# tini reaps children (ffmpeg) and forwards SIGTERM so the workers shut down gracefully; curl
# asks each service's /healthz for its HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hopster
ENTRYPOINT ["/usr/bin/tini", "--"]

FROM runtime AS api-gateway
COPY --from=build /src/target/release/api-gateway /usr/local/bin/api-gateway
USER hopster
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:5000/healthz || exit 1
CMD ["api-gateway"]

# Each worker serves /healthz, /readyz and /metrics on its ops port (worker.http_bind,
# 0.0.0.0:9090 by default); the HEALTHCHECK asks /healthz there.
FROM runtime AS downloader-worker
COPY --from=build /src/target/release/downloader-worker /usr/local/bin/downloader-worker
USER hopster
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
CMD ["downloader-worker"]

FROM runtime AS transcoder-worker
# util-linux's prlimit starts ffmpeg and ffprobe under their memory and CPU-time caps.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg util-linux \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/transcoder-worker /usr/local/bin/transcoder-worker
USER hopster
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
CMD ["transcoder-worker"]
