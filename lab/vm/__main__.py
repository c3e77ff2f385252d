"""`python -m lab.vm up|down|ssh|status|create|list|destroy`: the same as `lab vm` (an entry point, imported by
nothing: the commands live above lab.vm, in lab.machines)."""

from lab.machines.cli import main

main()
