"""The lab's local machines, and what every kind of machine shares. The local stand-in for a cloud server: a
systemd container that looks to SSH and Ansible like a fresh Debian 13 (or, with `--debian 12`, Debian 12)
machine configured by cloud-init, or with `--full` a real VM under qemu's software emulation. Cloud servers
live in lab.cloud, which builds on this package; the `lab vm` commands and the registry of every kind in
lab.machines, above both. Nothing here imports either.

- `base`      the Machine interface, the kinds, the record (`.lab/vm/<name>/vm.json`) and the one removal rule
- `recipe`    what goes into the image, and the digest that says when it must be rebuilt
- `image`     builds `framework-lab/vm:<suite>` (trixie, bookworm) with debootstrap, only when missing or stale
- `cloudinit` the user-data and meta-data (the same user-data the cloud providers get)
- `keys`      the lab's own ed25519 key pair, or the one the user names
- `commands`  argv for docker, ssh, ssh-keygen, chroot and mount: pure functions
- `machine`   the container stand-in (StandIn): its state, and up, down, status
- `ready`     waits until SSH, cloud-init and sudo answer
- `full`      one full VM (`--full`, FullVm): its disk overlay, seed ISO and qemu process
- `disk`      the full VM's base disk, kernel and initrd, built once with debootstrap and cached
- `qemu`      argv for qemu, qemu-img, mke2fs and genisoimage: pure functions
- `hosttools` installs the host tools the full VM needs when they are missing
"""
