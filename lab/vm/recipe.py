"""What goes into the VM image, as data; its digest (an image label) says when the image is stale.

Debian 13 (or 12) from Debian's packages, as a fresh cloud server has it: systemd, OpenSSH, sudo, Python
and cloud-init, no Docker (a playbook installs that). One image per release, `framework-lab/vm:<suite>`.
The few changes that make systemd at home in a container are files and masks listed here, so a change to
any of them changes the digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from lab import baseimage

# The Debian releases the VM can be (`lab vm up --debian N`): version -> suite. Both have Python 3.11+ for Ansible.
RELEASES = {"12": "bookworm", "13": "trixie"}
DEBIAN = "13"  # what a cloud server gets today, and the default
SUITE = RELEASES[DEBIAN]


def image_for(suite: str) -> str:
    return f"framework-lab/vm:{suite}"


IMAGE = image_for(SUITE)
DIGEST_LABEL = "org.framework-lab.vm-recipe"
# Bump when the build steps in image.py change in a way the data below does not show.
STEPS = 1

PACKAGES = (
    "systemd-sysv",
    "dbus",
    "kmod",
    "openssh-server",
    "sudo",
    "python3",
    "cloud-init",
    "ca-certificates",
    "curl",
    "gnupg",
    "iproute2",
    "iputils-ping",
    "procps",
    "less",
    "netbase",
)

# Units that hang or fail in a container: masked, i.e. linked to /dev/null.
MASKED = (
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-modules-load.service",
    "sys-kernel-config.mount",
    "getty@tty1.service",
    "console-getty.service",
    "systemd-remount-fs.service",
)

CLOUD_CFG = """\
# framework-lab VM stand-in: the NoCloud seed directory is the only source of instance data.
datasource_list: [ NoCloud, None ]
# Docker owns the container's network; cloud-init writes no network configuration.
network: {config: disabled}
locale: C.UTF-8
manage_etc_hosts: true
"""

CGROUPS_RW_SCRIPT = """\
#!/bin/sh
# In a container /sys and the cgroup v1 hierarchies are mounted read-only; systemd wants to make
# its units' cgroups there, and a Docker engine installed later its containers' ones.
set -e
mount -o remount,rw /sys
findmnt -rn -o TARGET -t cgroup,cgroup2 | while read -r target; do
    mount -o remount,bind,rw "$target"
done
"""

CGROUPS_RW_UNIT = """\
[Unit]
Description=Remount /sys and the cgroup hierarchies read-write (for a Docker engine inside)
DefaultDependencies=no
ConditionVirtualization=container
Before=sysinit.target containerd.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lab-cgroups-rw

[Install]
WantedBy=sysinit.target
"""

# Ansible's reboot module waits for a new /proc/sys/kernel/random/boot_id, but a container shares the
# host kernel's. runc refuses `docker run` mounts inside /proc, so the machine bind-mounts a new one over
# it itself, at every start (also when the engine restarts it after a `reboot` inside), before journald.
BOOT_ID_UNIT = """\
[Unit]
Description=A new boot ID at every start of the container
DefaultDependencies=no
ConditionVirtualization=container
Before=sysinit.target systemd-journald.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'cat /proc/sys/kernel/random/uuid > /run/boot_id'
ExecStart=/bin/chmod 0444 /run/boot_id
ExecStart=/bin/mount --bind /run/boot_id /proc/sys/kernel/random/boot_id

[Install]
WantedBy=sysinit.target
"""

# cloud-init makes the host keys at first boot; this makes sure there are some even if it did not.
HOST_KEYS_UNIT = """\
[Unit]
Description=SSH host keys for a new machine, if cloud-init made none
After=cloud-init-network.service cloud-init.service
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class File:
    path: str  # inside the tree, without the leading /
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    suite: str
    mirror: str
    packages: tuple[str, ...]
    files: tuple[File, ...]
    masked: tuple[str, ...]
    enabled: tuple[tuple[str, str], ...]  # (target, unit): unit is WantedBy target
    steps: int = STEPS

    def digest(self) -> str:
        """A stable digest of everything above: the same recipe gives the same digest in any process."""
        data = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode()).hexdigest()

    @property
    def labels(self) -> dict[str, str]:
        return {
            DIGEST_LABEL: self.digest(),
            "org.framework-lab.built-by": "debootstrap",
            "org.framework-lab.stands-for": f"debian-{self.suite}-cloud-server",
        }


def recipe(mirror: str = "http://deb.debian.org/debian", suite: str = SUITE) -> Recipe:
    files = (
        File("etc/apt/sources.list.d/debian.sources", baseimage.apt_sources(suite, mirror)),
        File("etc/cloud/cloud.cfg.d/90-framework-lab.cfg", CLOUD_CFG),
        File("usr/local/sbin/lab-cgroups-rw", CGROUPS_RW_SCRIPT, 0o755),
        File("etc/systemd/system/lab-cgroups-rw.service", CGROUPS_RW_UNIT),
        File("etc/systemd/system/lab-boot-id.service", BOOT_ID_UNIT),
        File("etc/systemd/system/lab-ssh-host-keys.service", HOST_KEYS_UNIT),
    )
    enabled = (
        ("sysinit.target", "lab-cgroups-rw.service"),
        ("sysinit.target", "lab-boot-id.service"),
        ("multi-user.target", "lab-ssh-host-keys.service"),
    )
    return Recipe(suite, mirror, PACKAGES, files, MASKED, enabled)
