# syntax=docker/dockerfile:1
# Multi-stage build of the bridge: a static, stripped binary on a distroless
# image that runs as a non-root user.
#
#   docker build -t wps-bridge --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm wps-bridge version

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/bridge ./cmd/bridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /usr/local/bin/bridge
# The documented dev configuration; mount your own over it.
COPY bridge.yaml /etc/bridge/bridge.yaml
# distroless "nonroot" (numeric, so that runAsNonRoot can verify it).
USER 65532:65532
# 9464: /metrics /healthz /readyz (set http.listen to 0.0.0.0:9464 in a container);
# 8080: `bridge emulator --listen 0.0.0.0:8080`.
EXPOSE 9464 8080
ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["run", "-c", "/etc/bridge/bridge.yaml"]
