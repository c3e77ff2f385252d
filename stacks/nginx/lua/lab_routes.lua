-- Which app containers serve each framework, changed at run time without reloading nginx.
--
-- A reload makes the old workers close every idle keep-alive connection of the clients, and a
-- client that sent its next request at that moment sees the connection drop. So the routes live
-- in a shared dictionary that the workers read on each request: render-upstreams (and the
-- swap that lab up / lab deploy runs) replace them through the control listener, which is on
-- 127.0.0.1 inside this container only.
local balancer = require "ngx.balancer"

local routes = ngx.shared.lab_routes
local parsed = {}  -- per worker: name -> {raw = "ip:port ...", list = {{ip, port}, ...}}
local turn = {}    -- per worker: name -> the last peer index chosen (round robin)

local M = {}

local function peers(name)
    local raw = routes:get(name)
    if not raw or raw == "" then
        return nil
    end
    local cached = parsed[name]
    if cached and cached.raw == raw then
        return cached.list
    end
    local list = {}
    for host, port in raw:gmatch("([%d%.]+):(%d+)") do
        list[#list + 1] = { host, tonumber(port) }
    end
    parsed[name] = { raw = raw, list = list }
    return list
end

-- balancer_by_lua: the first try takes the next peer in turn; a retry (connection refused or
-- reset) takes the one after it, so a container that is going away costs no request.
function M.balance(name)
    local list = peers(name)
    if not list or #list == 0 then
        return ngx.exit(502)  -- error_page turns it into the "not running" page
    end
    local ctx = ngx.ctx
    local index = ctx.lab_peer
    if index == nil then
        index = (turn[name] or 0) % #list + 1
        turn[name] = index
        if #list > 1 then
            balancer.set_more_tries(#list - 1)
        end
    else
        index = index % #list + 1
    end
    ctx.lab_peer = index
    local ok, err = balancer.set_current_peer(list[index][1], list[index][2])
    if not ok then
        ngx.log(ngx.ERR, "lab_routes: ", name, ": ", err)
        return ngx.exit(500)
    end
end

-- The control listener. GET: the routes, a line "name ip:port…" each. PUT: a body of lines "name ip:port ip:port…"
-- replaces the routes of the names it lists (a name with no peers has none).
function M.control()
    if ngx.req.get_method() == "PUT" then
        ngx.req.read_body()
        local body = ngx.req.get_body_data() or ""
        for line in body:gmatch("[^\n]+") do
            local name, rest = line:match("^([a-z][a-z0-9]*)%s*(.*)$")
            if not name then
                ngx.status = 400
                ngx.say("bad line: ", line)
                return
            end
            routes:set(name, rest)
        end
    end
    ngx.header["Content-Type"] = "text/plain"
    local names = routes:get_keys(0)
    table.sort(names)
    for _, name in ipairs(names) do
        ngx.say(name, " ", routes:get(name) or "")
    end
end

return M
