#!/bin/bash
# Run nginx in the foreground and hand it the routes (which containers serve each framework)
# every LAB_WATCH_INTERVAL seconds, so apps that appear, go or change address are picked up
# without a reload. nginx reloads only if its rendered configuration itself changed.
set -uo pipefail

render-upstreams
nginx -t -q || exit 1
nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

# The first routes as soon as nginx listens, not one interval later.
for _ in $(seq 50); do
    render-upstreams --routes >/dev/null && break
    sleep 0.1
done

while kill -0 "$nginx_pid" 2>/dev/null; do
    if render-upstreams; then
        nginx -t -q && nginx -s reload
    fi
    sleep "${LAB_WATCH_INTERVAL:-2}" &
    wait $!
done
wait "$nginx_pid"
