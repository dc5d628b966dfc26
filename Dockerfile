# snwgw in a container: built from source, run as a non-root user on a
# distroless base (no shell, no package manager).
#
#   docker build -t snwgw --build-arg VERSION=$(git describe --tags --always --dirty) .
#   docker run -d --name snwgw -p 1883:1883/udp -p 1883:1883/tcp -v snwgw-data:/var/lib/snwgw snwgw
#
# The configuration is the repository's gateway.toml; mount your own over
# /etc/snwgw (read-only is enough). Serial devices need --device and a
# group that may open them (--group-add).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
# The same static build as make dist and make deb; then the licences of
# everything the binary links, as the Debian package ships them.
RUN make static VERSION="$VERSION" REVISION="$REVISION" OUT=/out/usr/bin/snwgw \
 && mkdir -p /out/usr/share/doc/snwgw /out/etc/snwgw /out/var/lib/snwgw \
 && ./scripts/deb.sh copyright > /out/usr/share/doc/snwgw/copyright \
 && cp gateway.toml /out/etc/snwgw/gateway.toml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr /usr
COPY --from=build /out/etc /etc
# The data directory belongs to the nonroot user (65532), so a new named
# volume mounted there is writable by the gateway.
COPY --from=build --chown=65532:65532 /out/var/lib/snwgw /var/lib/snwgw
USER nonroot:nonroot
# MQTT-SN on UDP 1883 and MQTT on TCP 1883 by default; 8883 for DTLS
# (UDP) and MQTT over TLS (TCP) once configured.
EXPOSE 1883/udp 1883/tcp 8883/udp 8883/tcp
VOLUME ["/var/lib/snwgw"]
ENTRYPOINT ["/usr/bin/snwgw"]
CMD ["serve", "--config", "/etc/snwgw/gateway.toml", "--data-dir", "/var/lib/snwgw"]
