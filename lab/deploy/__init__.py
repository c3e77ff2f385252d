"""Deploy the lab to SSH hosts with Ansible (playbooks/), driven through ansible-runner."""
