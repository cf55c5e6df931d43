#!/usr/bin/env bash
# The packaging test (separate from the default suite: the image build takes minutes).
#   1. makes the base images locally when missing: Debian bookworm by debootstrap, and a
#      Rust builder from Debian's rustc-web/cargo-web (no image registry needed);
#   2. builds the real multi-stage Containerfile with them (elsewhere the same file
#      builds from the official images: podman build -t confab .);
#   3. builds the Debian package (cargo deb) and installs it in a systemd container;
#   4. builds Redis, RabbitMQ, nginx and an SMTP sink from Debian packages;
#   5. runs tests/deployed.rs: the image with a volume (healthcheck, OTP login through
#      SMTP, a Socket.IO message, restart, data kept), the package's unit under a real
#      systemd (same checks, and its sandbox really applied), and the two-instance
#      compose stack (packaging/compose) on those images.
# podman settings for these VMs come from packaging/container/containers.conf.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=packaging/lib.sh
. packaging/lib.sh
export CONTAINERS_CONF="$PWD/packaging/container/containers.conf"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/confab-tests"
mkdir -p "$cache"

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Package and crate downloads inside builds go through this machine's trust store
# (which may hold a proxy's CA).
ca=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)

if ! podman image exists localhost/debian:bookworm; then
  say "making localhost/debian:bookworm with debootstrap"
  rootfs="$cache/bookworm-rootfs"
  [ -x "$rootfs/bin/sh" ] || as_root debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
  tar -C "$rootfs" -c . | podman import - localhost/debian:bookworm
fi
if ! podman image exists localhost/confab-rust:bookworm; then
  say "making localhost/confab-rust:bookworm (Debian's Rust)"
  podman build --format docker "${ca[@]}" -f packaging/container/rust-builder.Containerfile \
    -t localhost/confab-rust:bookworm packaging/container
fi

say "building the Containerfile"
started=$(date +%s)
podman build --format docker "${ca[@]}" \
  --build-arg BUILDER=localhost/confab-rust:bookworm --build-arg RUNTIME=localhost/debian:bookworm \
  -f Containerfile -t localhost/confab:test .
echo "image built in $(( $(date +%s) - started )) s: $(podman image inspect --format '{{.Size}}' localhost/confab:test | awk '{printf "%.0f MB", $1/1e6}')"

say "building the Debian package"
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo deb
deb_dir=$(mktemp -d)
trap 'rm -rf "$deb_dir"' EXIT
deb=$(ls -t target/debian/confab_*.deb | head -n1)
echo "$deb: $(du -h "$deb" | cut -f1)"
cp "$deb" "$deb_dir/confab.deb"

say "installing it under systemd in a container"
podman build --format docker -f packaging/container/systemd.Containerfile -t localhost/confab-systemd:test "$deb_dir"

say "building the compose stack's backends from Debian packages"
for target in redis rabbitmq nginx smtp; do
  podman build --format docker --target "$target" -f packaging/container/backends.Containerfile \
    -t "localhost/confab-$target:test" packaging/container
done
# Containers on one compose network find each other by name through this CNI plugin.
if [ ! -e /usr/lib/cni/dnsname ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    golang-github-containernetworking-plugin-dnsname
fi

say "running the deployed checks"
npm ci --prefix tests/js --no-audit --no-fund >/dev/null
pinned_tool podman-compose 1.6.0 podman-compose
cargo test --test deployed -- --ignored --nocapture --test-threads 1
