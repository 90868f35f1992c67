# syntax=docker/dockerfile:1
#
# stated in a container: a static binary on a distroless base, run as a non-root
# user, with its data in the volume /data.
#
#   docker build -t stated .
#   docker run --rm -p 127.0.0.1:8080:8080 -v stated-data:/data -e STATED_AUTH=off stated
#
# The server listens on 0.0.0.0:8080 inside the container, which is not a loopback
# address: it requires API keys unless STATED_AUTH=off, and refuses to start with
# them on but no STATED_ADMIN_KEY and no tenant key. docs/quickstart.md has more.

# The toolchain go.mod asks for.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a change of the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/stated ./cmd/stated \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/stated /usr/local/bin/stated
# A named volume mounted here starts as a copy of this directory, owned by the
# image's non-root user (65532), so the server can write to it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV STATED_ADDR=0.0.0.0:8080 \
    STATED_DATA=/data
VOLUME ["/data"]
EXPOSE 8080
# No HEALTHCHECK: the base has no shell or curl. Probe GET /healthz from outside.
ENTRYPOINT ["/usr/local/bin/stated"]
CMD ["serve"]
