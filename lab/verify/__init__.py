"""`lab verify`: the contract checked from outside, through nginx, and the hosts checked with testinfra."""
