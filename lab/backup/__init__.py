"""Backup and restore of the lab's PostgreSQL (`lab backup`, `lab restore`, `lab deploy --backup`)."""
