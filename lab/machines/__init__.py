"""Machines of every kind, by name: the local stand-in (a container), a full VM under qemu, a cloud server.
Above lab.vm (the local kinds, and lab.vm.base, what every kind has) and lab.cloud (cloud servers); neither of
those imports this package.

- `registry` a name's kind (from its record, one rule), the machine of that kind, every machine, and `up`
- `cli`      the `lab vm` commands, for every kind
"""
