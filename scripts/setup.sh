#!/usr/bin/env bash
# Installs every Debian 12 package Cloak needs to build, test and run. Safe to run twice.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang-format curl ca-certificates
  libtorch-dev libopencv-dev libpng-dev libjpeg-dev libcli11-dev libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libexiv2-dev libzip-dev libssl-dev libwebp-dev libcpp-httplib-dev
  libjxl-dev libjxl-devtools libgoogle-perftools-dev
  gimp libgimp2.0-dev
  krita python3-pyqt5 xvfb xauth
  slurmctld slurmd slurm-client munge python3-yaml
  chromium chromium-driver python3-selenium
  clang libclang-rt-14-dev libfuzzer-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
