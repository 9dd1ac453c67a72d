#!/usr/bin/env bash
# hotport's libvirt host: libvirtd + QEMU (TCG) on this machine, and a tiny Linux guest
# that acknowledges PCI hot-unplug, so interface detach really completes. Used by the
# e2e tests (tests/e2e/libvirt) and .ci/run. Idempotent: every command can be re-run.
#
#   libvirt-host.sh [start]            install what is missing (apt: libvirt, QEMU,
#                                      libvirt-dev + pkg-config for libvirt-python, cpio),
#                                      build the guest kernel + initramfs, start virtlogd
#                                      and libvirtd
#   libvirt-host.sh guest NAME [UUID]  define + start a tiny guest; prints its UUID once
#                                      the guest has booted (it can then ack an unplug)
#   libvirt-host.sh noguest NAME [UUID] define + start a domain with no guest OS: it never
#                                      acknowledges an unplug (NICs stay after detach)
#   libvirt-host.sh rm NAME            destroy + undefine one domain this script made
#   libvirt-host.sh stop               remove the domains it made, stop the daemons
#   libvirt-host.sh status             exit 0 iff libvirtd answers; lists the domains
#   libvirt-host.sh env                prints HOTPORT_LIBVIRT_URI / HOTPORT_LIBVIRT_STATE
#
# State: $HOTPORT_LIBVIRT_STATE (default ${TMPDIR:-/tmp}/hotport-peers/libvirt).
# URI: qemu:///system. Guests: domain type 'qemu' (TCG; KVM guests did not boot here),
# 128 MiB, machine 'pc' with <acpi/> (i440fx PCI hotplug needs ACPI), no graphics.
#
# Facts (found the hard way): the QEMU driver needs the user libvirt-qemu to exist even
# with user = "root" in qemu.conf; libvirtd needs virtlogd, /var/log/libvirt and
# /var/run/libvirt; the test:///default driver cannot attach/detach devices; the Debian
# *cloud* kernel has ACPI PCI hotplug built in; libvirt-python builds from source against
# the installed libvirt (needs libvirt-dev, pkg-config, gcc).
set -euo pipefail
STATE=${HOTPORT_LIBVIRT_STATE:-${TMPDIR:-/tmp}/hotport-peers/libvirt}
URI=qemu:///system
mkdir -p "$STATE"/{guest,run,log}
log() { printf '[libvirt-host %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

install() {
    local need=()
    command -v libvirtd >/dev/null || need+=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    dpkg -s libvirt-dev >/dev/null 2>&1 || need+=(libvirt-dev)
    command -v pkg-config >/dev/null || need+=(pkg-config)
    command -v gcc >/dev/null || need+=(gcc)
    command -v cpio >/dev/null || need+=(cpio)
    if [ ${#need[@]} -gt 0 ]; then
        log "apt-get install ${need[*]} (log: $STATE/log/apt.log)"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -q >"$STATE/log/apt.log" 2>&1
        $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >>"$STATE/log/apt.log" 2>&1
    fi
    getent group kvm >/dev/null || $SUDO groupadd -f kvm
    getent group libvirt-qemu >/dev/null || $SUDO groupadd -f libvirt-qemu
    id libvirt-qemu >/dev/null 2>&1 || $SUDO useradd -r -g libvirt-qemu libvirt-qemu
    if ! grep -q '^# hotport-libvirt-host' /etc/libvirt/qemu.conf 2>/dev/null; then
        $SUDO tee -a /etc/libvirt/qemu.conf >/dev/null <<'CONF'
# hotport-libvirt-host: QEMU as root without a security driver (no systemd, no cgroups)
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = []
CONF
    fi
    $SUDO mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt
}

build_guest() {
    [ -s "$STATE/guest/vmlinuz" ] && [ -s "$STATE/guest/initrd.gz" ] && return 0
    log "building the guest kernel + busybox initramfs"
    local dl=$STATE/guest/dl; rm -rf "$dl"; mkdir -p "$dl"
    local kpkg
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$kpkg" ]; then  # no package lists yet (install() had nothing to install)
        $SUDO apt-get update -q >>"$STATE/log/apt.log" 2>&1
        kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    fi
    [ -n "$kpkg" ] || { log "no linux-image-cloud-amd64 in apt; see $STATE/log/apt.log"; exit 1; }
    (cd "$dl" && apt-get download "$kpkg" busybox-static >"$STATE/log/download.log" 2>&1)
    mkdir -p "$dl/k" "$dl/bb"
    dpkg -x "$dl"/linux-image-*.deb "$dl/k"; dpkg -x "$dl"/busybox-static_*.deb "$dl/bb"
    cp "$dl"/k/boot/vmlinuz-* "$STATE/guest/vmlinuz.tmp"
    local ir=$dl/ir; mkdir -p "$ir"/{bin,proc,sys,dev}
    cp "$dl/bb/bin/busybox" "$ir/bin/"
    cat >"$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
echo GUEST-UP
while true; do /bin/busybox sleep 3600; done
INIT
    chmod +x "$ir/init"
    (cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip >"$STATE/guest/initrd.gz.tmp")
    mv "$STATE/guest/vmlinuz.tmp" "$STATE/guest/vmlinuz"
    mv "$STATE/guest/initrd.gz.tmp" "$STATE/guest/initrd.gz"
    rm -rf "$dl"
}

up() { virsh -c $URI version >/dev/null 2>&1; }

start_daemons() {
    pgrep -x virtlogd >/dev/null || { $SUDO virtlogd -d; log "virtlogd started"; }
    if ! up; then
        $SUDO libvirtd -d
        for _ in $(seq 1 80); do up && break; sleep 0.25; done
        up || { log "libvirtd did not answer; see /var/log/libvirt/libvirtd.log"; exit 1; }
        log "libvirtd started"
    fi
}

domain() {  # NAME UUID WITH_OS -> defines and starts the domain
    local name=$1 uuid=$2 os=$3 boot
    if [ "$os" = yes ]; then
        boot="<kernel>$STATE/guest/vmlinuz</kernel><initrd>$STATE/guest/initrd.gz</initrd>
      <cmdline>console=ttyS0</cmdline>"
    else
        boot="<boot dev='hd'/>"  # no disk: the firmware loops, nothing answers ACPI
    fi
    rm -f "$STATE/log/$name.console"
    cat >"$STATE/run/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <uuid>$uuid</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
      $boot</os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='$STATE/log/$name.console'/></serial></devices>
</domain>
XML
    virsh -c $URI define "$STATE/run/$name.xml" >/dev/null
    grep -qx "$name" "$STATE/run/guests" 2>/dev/null || echo "$name" >>"$STATE/run/guests"
    virsh -c $URI start "$name" >/dev/null
}

guest() {
    local name=$1 uuid=${2:-$(cat /proc/sys/kernel/random/uuid)}
    start_daemons
    domain "$name" "$uuid" yes
    # The guest must have booted before it can acknowledge a hot-unplug.
    for _ in $(seq 1 240); do grep -q GUEST-UP "$STATE/log/$name.console" 2>/dev/null && break; sleep 0.25; done
    grep -q GUEST-UP "$STATE/log/$name.console" || { log "guest $name did not boot"; exit 1; }
    echo "$uuid"
}

noguest() {
    local name=$1 uuid=${2:-$(cat /proc/sys/kernel/random/uuid)}
    start_daemons
    domain "$name" "$uuid" no
    echo "$uuid"
}

rm_domain() {
    local name=$1
    virsh -c $URI destroy "$name" >/dev/null 2>&1 || true
    virsh -c $URI undefine "$name" >/dev/null 2>&1 || true
    rm -f "$STATE/run/$name.xml" "$STATE/log/$name.console"
    if [ -f "$STATE/run/guests" ]; then
        grep -vx "$name" "$STATE/run/guests" >"$STATE/run/guests.new" || true
        mv "$STATE/run/guests.new" "$STATE/run/guests"
    fi
}

stop() {
    if [ -f "$STATE/run/guests" ] && up; then
        while read -r g; do rm_domain "$g"; done < <(cat "$STATE/run/guests")
    fi
    rm -f "$STATE/run/guests"
    local p pid
    for p in libvirtd virtlogd; do
        pid=$(cat /var/run/$p.pid 2>/dev/null || true)
        [ -n "$pid" ] || continue
        $SUDO kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && log "$p ($pid) is still exiting"
    done
    return 0
}

case ${1:-start} in
    start) install; build_guest; start_daemons; log "ready: virsh -c $URI list --all" ;;
    guest) shift; [ $# -ge 1 ] || { echo "usage: $0 guest NAME [UUID]" >&2; exit 2; }; guest "$@" ;;
    noguest) shift; [ $# -ge 1 ] || { echo "usage: $0 noguest NAME [UUID]" >&2; exit 2; }; noguest "$@" ;;
    rm) shift; [ $# -eq 1 ] || { echo "usage: $0 rm NAME" >&2; exit 2; }; rm_domain "$1" ;;
    stop) stop ;;
    status) up || { echo "libvirtd is not running at $URI" >&2; exit 1; }; virsh -c $URI list --all ;;
    env) printf 'HOTPORT_LIBVIRT_URI=%s\nHOTPORT_LIBVIRT_STATE=%s\n' "$URI" "$STATE" ;;
    *) echo "usage: $0 [start|guest NAME [UUID]|noguest NAME [UUID]|rm NAME|stop|status|env]" >&2; exit 2 ;;
esac
