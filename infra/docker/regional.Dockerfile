# Build from the repository root: docker build -f infra/docker/regional.Dockerfile .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p meridian-regional

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/meridian-regional /usr/local/bin/meridian-regional
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["meridian-regional", "serve", "--config", "/etc/meridian/config.yaml"]
