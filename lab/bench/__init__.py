"""`lab bench`: load runs with wrk on the lab's own network, results.json, reports, comparisons."""
