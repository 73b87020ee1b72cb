# Stand-in for rust:<version>-slim-bookworm (test aid; see scripts/stand-in-images): this
# machine's own Rust toolchain on the debootstrapped bookworm, laid out as the official image
# lays it out (CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# The machine's trust store: HTTPS from here (cargo to the crate registry) passes the same
# TLS inspection as the machine's own.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
