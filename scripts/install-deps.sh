#!/usr/bin/env bash
# Installs the Debian 12 packages vcpumap needs, only those missing. Usage:
#   scripts/install-deps.sh build   compilers and libraries
#   scripts/install-deps.sh test    the above, plus what the tests run (QEMU, libvirt, tmux...)
set -euo pipefail

build_packages=(
  g++ cmake make pkg-config
  libcli11-dev libfmt-dev nlohmann-json3-dev libhwloc-dev libvirt-dev libxml2-dev
  libncurses-dev libmicrohttpd-dev libgnutls28-dev nettle-dev libyaml-dev zlib1g-dev libgtest-dev
  libbenchmark-dev libbpf-dev clang bpftool scdoc
)
test_packages=(
  clang-format clang libclang-rt-14-dev procps util-linux bzip2 tmux python3 openssl prometheus chromium time
  qemu-system-x86
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  linux-perf valgrind
  debhelper dpkg-dev lintian man-db groff-base bash-completion zsh python3-seccomp python3-yaml
  prometheus-libvirt-exporter
)
# Daemons the tests and benches start themselves, by PID: installing them must not leave them
# running as services (Debian starts a service it installs where systemd runs).
no_service_packages=(prometheus-libvirt-exporter)

wanted=("${build_packages[@]}")
case "${1:-build}" in
  build) ;;
  test) wanted+=("${test_packages[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "vcpumap: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [[ -d /run/systemd/system ]]; then
  for package in "${no_service_packages[@]}"; do
    if [[ " ${missing[*]} " == *" $package "* ]]; then
      systemctl disable --now "$package.service" >/dev/null 2>&1 || true
    fi
  done
fi
