# The spoor image. Build from the repository root:
#   docker build -f deploy/docker/spoor.Dockerfile -t spoor:dev .
# A static binary (no cgo) on a small Debian base, run as an unprivileged
# user; the data folder is a volume.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/spoor ./cmd/spoor

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/spoor spoor \
 && install -d -o spoor -g spoor -m 0700 /var/lib/spoor /var/lib/spoor-witness
COPY --from=build /out/spoor /usr/local/bin/spoor
USER spoor
WORKDIR /var/lib/spoor
VOLUME ["/var/lib/spoor"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/spoor"]
CMD ["serve", "--data", "/var/lib/spoor", "--http", "0.0.0.0:8080"]
