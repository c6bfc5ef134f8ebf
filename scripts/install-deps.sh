#!/usr/bin/env bash
# Installs exactly the Debian 12 packages chatcore needs to build, run and
# test, and nothing when they are all present (idempotent). As root it runs
# apt-get; otherwise it prints the apt-get line to run and exits 1.
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config
  # libchatcore
  libasio-dev libflatbuffers-dev flatbuffers-compiler libfmt-dev liblmdb-dev
  zlib1g-dev  # the LMDB store's journal checksums
  # tests and benchmarks
  doctest-dev libbenchmark-dev python3-pytest python3-websockets python3-flatbuffers openssl
  prometheus  # promtool, to lint /metrics
  # chatcored and chatcore-cli
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libtomlplusplus-dev libsodium-dev libcli11-dev libspdlog-dev
  nlohmann-json3-dev libcurl4-openssl-dev
  # chatcore-bench (its XMPP adapter parses with expat)
  libexpat1-dev
  # the web client and its browser tests
  nodejs chromium fonts-dejavu-core
)
# npm: Debian 12's nodejs 18 ships it separately; a nodejs 20 from another
# apt source bundles it and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages; run as root:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive $cmd" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive $cmd
