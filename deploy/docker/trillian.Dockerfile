# Trillian's log server, log signer and createtree at the version go.mod
# pins (v1.8.0), with its PostgreSQL schema, in one image for the compose
# file. Build from the repository root:
#   docker build -f deploy/docker/trillian.Dockerfile -t spoor-trillian:1.8.0 .
FROM golang:1.26-bookworm AS build
ARG TRILLIAN_VERSION=v1.8.0
RUN CGO_ENABLED=0 GOBIN=/out go install \
      github.com/google/trillian/cmd/trillian_log_server@${TRILLIAN_VERSION} \
      github.com/google/trillian/cmd/trillian_log_signer@${TRILLIAN_VERSION} \
      github.com/google/trillian/cmd/createtree@${TRILLIAN_VERSION} \
 && cp "$(go env GOMODCACHE)/github.com/google/trillian@${TRILLIAN_VERSION}/storage/postgresql/schema/storage.sql" /out/storage.sql

FROM debian:bookworm-slim
RUN useradd --system --uid 10002 --user-group trillian
COPY --from=build /out/trillian_log_server /out/trillian_log_signer /out/createtree /usr/local/bin/
COPY --from=build /out/storage.sql /opt/trillian/storage.sql
USER trillian
