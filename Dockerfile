# claude-gateway image: the static binary on an empty base, running as uid 1000.
#   make build-image            (docker build -t claude-gateway:local .)
# The final stage has no shell and no package manager: the binary, its
# Caddyfile and its snippets, the CA bundle, /etc/passwd and the directories uid 1000 writes to.
# Those files are laid out by cmd/image-rootfs, which the image test also uses.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -ldflags '-s -w' -o /out/claude-gateway ./cmd/claude-gateway \
 && go run ./cmd/image-rootfs -binary /out/claude-gateway -caddyfile Caddyfile -snippets snippets.caddyfile \
      -ca-bundle /etc/ssl/certs/ca-certificates.crt -o /out/rootfs.tar \
 && mkdir /rootfs \
 && tar -xpf /out/rootfs.tar --same-owner --numeric-owner -C /rootfs

FROM scratch
COPY --from=builder /rootfs/ /
ENV HOME=/home/gateway \
    XDG_DATA_HOME=/data \
    XDG_CONFIG_HOME=/config \
    CLAUDE_WORKSPACE=/workspace
USER 1000:1000
WORKDIR /home/gateway
# 80: ACME HTTP-01 and the redirect to HTTPS; 443: HTTPS (h1, h2); 443/udp: HTTP/3.
EXPOSE 80 443 443/udp
# The binary is its own probe: it asks https://$DOMAIN/api/live on 127.0.0.1:443.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/bin/claude-gateway", "healthcheck"]
ENTRYPOINT ["/usr/bin/claude-gateway"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
