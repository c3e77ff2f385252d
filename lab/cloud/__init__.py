"""Cloud servers the lab creates, deploys to and destroys: DigitalOcean (pydo) and Hetzner Cloud (hcloud).

- `token`        the API token: from the environment or a file, never shown, logged or stored
- `plan`         what a server is (provider, name, region, size, image), a group of them in one private network
                 (`--count`), and the API calls that create them: pure functions, printed by `--dry-run`
- `ratelimit`    waits out 429 answers for as long as the API says, within bounds
- `digitalocean` the DigitalOcean API through pydo
- `hetzner`      the Hetzner Cloud API through hcloud
- `providers`    what the lab asks of either provider (Api), and its endpoint
- `connect`      connects to one of the two, with its token
- `state`        `.lab/cloud.json` (what the lab created) and each server's machine record (how to reach it)
- `lifecycle`    create one server or a group (cleaning up after any failure or Ctrl-C), destroy (a group's network
                 with its last server), destroy everything the lab made
- `server`       one cloud server as a lab.vm.base.Machine (CloudServer)
- `cli`          what `lab vm create|list|destroy` do (declared in lab/machines/cli.py)
"""
