# syntax=docker/dockerfile:1
# Braid: build the release binary, then run it as a non-root user on Debian slim.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
COPY migrations ./migrations
COPY templates ./templates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p braid-server \
 && cp target/release/braid /usr/local/bin/braid

FROM debian:bookworm-slim
# libssl3: the bundled libpq talks TLS to PostgreSQL through OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/braid --create-home --shell /usr/sbin/nologin braid
COPY --from=builder /usr/local/bin/braid /usr/local/bin/braid
COPY config/braid.example.toml /etc/braid/braid.example.toml
USER braid
WORKDIR /var/lib/braid
ENV BRAID_SERVER__HOST=0.0.0.0 \
    BRAID_SERVER__PORT=8080
EXPOSE 8080
VOLUME ["/var/lib/braid"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/braid", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/braid"]
CMD ["serve"]
