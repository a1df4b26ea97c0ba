# gatehouse in a container: built from source, shipped as one static binary on distroless.
#   docker build -t gatehouse --build-arg VERSION=$(git describe --always --dirty) .
# Runs as a non-root user (65532) with a read-only root filesystem: the only writable place it
# needs is data_dir (/var/lib/gatehouse, a volume) and /tmp for `gatehouse validate` (a tmpfs).
# docs/deploy/compose.yml puts it behind Traefik; README "Deploy".

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The release flags (.ci/release): static (the SQLite driver is pure Go), no paths, no build id.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.buildVersion=${VERSION}" \
      -o /out/gatehouse ./cmd/gatehouse \
 && mkdir -p /out/data

# distroless/static: CA certificates (JWKS, OIDC, webhooks over HTTPS), tzdata, and an /etc/passwd
# with the non-root user 65532 ("nonroot"); no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
COPY docs/deploy/gatehouse.yml /etc/gatehouse/gatehouse.yml
USER 65532:65532
# data_dir: the signing key, stream keys (SQLite) and bans survive a new container.
VOLUME ["/var/lib/gatehouse"]
# 8089 public (WHIP/WHEP, pages; put a TLS proxy in front), 8090 hooks (keep it on an internal
# network), 8189/udp all WebRTC media.
EXPOSE 8089 8090 8189/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/gatehouse", "healthcheck", "-url", "http://127.0.0.1:8089/healthz", "-timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["run", "-config", "/etc/gatehouse/gatehouse.yml"]
