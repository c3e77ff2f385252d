"""The lab's local stand-in for a cloud server: a systemd container that looks to SSH and Ansible like a
fresh Debian 13 (or, with `--debian 12`, Debian 12) machine configured by cloud-init (the recipe and its
pitfalls were tried first), or with `--full` a real VM under qemu's software emulation. Cloud
servers live in lab.cloud.

- `recipe`    what goes into the image, and the digest that says when it must be rebuilt
- `image`     builds `framework-lab/vm:<suite>` (trixie, bookworm) with debootstrap, only when missing or stale
- `cloudinit` the user-data and meta-data (the same user-data the cloud providers get)
- `keys`      the lab's own ed25519 key pair, or the one the user names
- `commands`  argv for docker, ssh, ssh-keygen, chroot and mount: pure functions
- `machine`   one VM's state (`.lab/vm/<name>/`), and up, down, status
- `ready`     waits until SSH, cloud-init and sudo answer
- `full`      one full VM (`--full`): its disk overlay, seed ISO and qemu process
- `disk`      the full VM's base disk, kernel and initrd, built once with debootstrap and cached
- `qemu`      argv for qemu, qemu-img, mke2fs and genisoimage: pure functions
- `hosttools` installs the host tools the full VM needs when they are missing
- `cli`       the `lab vm` commands
"""
