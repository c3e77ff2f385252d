#!/bin/bash
# Run nginx in the foreground and re-render its upstreams whenever an app appears,
# disappears or changes address; reload nginx only when the rendered configuration changed.
set -uo pipefail

render-upstreams
nginx -t -q || exit 1
nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
    sleep "${LAB_WATCH_INTERVAL:-2}" &
    wait $!
    if render-upstreams; then
        nginx -t -q && nginx -s reload
    fi
done
wait "$nginx_pid"
