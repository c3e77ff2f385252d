#!/bin/bash
# Run nginx in the foreground and hand it the routes (which containers serve each framework)
# every LAB_WATCH_INTERVAL seconds, so apps that appear, go or change address are picked up
# without a reload. nginx reloads only if its rendered configuration itself changed.
set -uo pipefail

# Open files: whatever the container may have (compose `ulimits`: lab.stacks.NOFILE), per worker, all
# but 512 for connections (client and upstream ones; the rest: logs, listeners). nginx runs
# unprivileged: it can raise its soft limit up to the hard one, not beyond.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
printf 'worker_rlimit_nofile %d;\n' "$nofile" >/etc/nginx/lab/limits.conf
printf 'worker_connections %d;\n' "$((nofile - 512))" >/etc/nginx/lab/events.conf
render-upstreams
nginx -t -q || exit 1
# The ACME bundle as it is before nginx reads it (init_by_lua): a file renamed into place after this
# is noticed below, even one that lands while nginx starts (taken later, it would be missed).
bundle=/run/lab-acme/live/cert.pem
seen=$(stat -c '%i %Y %s' "$bundle" 2>/dev/null)
nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

# The first routes as soon as nginx listens, not one interval later.
for _ in $(seq 50); do
    render-upstreams --routes >/dev/null && break
    sleep 0.1
done

# A renewed ACME certificate (a new file in the mounted folder) is handed over without a reload;
# the host's deploy hook asks at once too (render-upstreams --tls), this catches the rest.
while kill -0 "$nginx_pid" 2>/dev/null; do
    if render-upstreams; then
        nginx -t -q && nginx -s reload
    fi
    now=$(stat -c '%i %Y %s' "$bundle" 2>/dev/null)
    if [ "$now" != "$seen" ] && render-upstreams --tls >/dev/null; then
        seen=$now
    fi
    sleep "${LAB_WATCH_INTERVAL:-2}" &
    wait $!
done
wait "$nginx_pid"
