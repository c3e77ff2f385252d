"""The lab's local stand-in for a cloud server: a systemd container that looks to SSH and Ansible like a
fresh Debian 13 machine configured by cloud-init (the recipe and its pitfalls were tried first: VM.md).

- `recipe`    what goes into the image, and the digest that says when it must be rebuilt
- `image`     builds `framework-lab/vm:trixie` with debootstrap, only when missing or stale
- `cloudinit` the user-data and meta-data (the same user-data the cloud providers get)
- `keys`      the lab's own ed25519 key pair, or the one the user names
- `commands`  argv for docker, ssh, ssh-keygen, chroot and mount: pure functions
- `machine`   one VM's state (`.lab/vm/<name>/`), and up, down, status
- `ready`     waits until SSH, cloud-init and sudo answer
- `cli`       the `lab vm` commands
"""
