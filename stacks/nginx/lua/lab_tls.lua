-- A server's ACME certificate, swapped in at run time without reloading nginx.
--
-- A reload closes every idle keep-alive connection, which a client sees as a failed request, so a
-- renewal must not reload. The certificate lives in one file of a mounted folder (a folder: a file
-- mounted on its own keeps the inode it had when the container started), written whole and renamed
-- into place by the host's certbot deploy hook:
--     framework-lab domain NAME
--     -----BEGIN PRIVATE KEY----- ... (the key)
--     -----BEGIN CERTIFICATE----- ... (the chain, leaf first)
-- load() reads it into a shared dictionary (at start, and on PUT /tls of the control listener, which
-- render-upstreams --tls sends when the file changed); each worker parses it once per version.
-- A handshake for NAME gets it; every other name (an address, no SNI) gets the default certificate
-- (the lab CA's). HSTS and the HTTP -> HTTPS redirect apply to NAME only, once its certificate is loaded.
local ssl = require "ngx.ssl"

local BUNDLE = "/run/lab-acme/live/cert.pem"
local HSTS = "max-age=63072000"  -- two years; no includeSubDomains: the lab knows only this name
local CHALLENGE = "/.well-known/acme-challenge/"

local store = ngx.shared.lab_acme
local cached = {}  -- per worker: version, domain, chain and key (parsed)

local M = {}

local function split(text)
    local domain = text:match("^framework%-lab domain ([%w%.%-]+)\r?\n")
    local key = text:match("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-.-%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-")
    local certs = {}
    for cert in text:gmatch("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-") do
        certs[#certs + 1] = cert
    end
    if not domain or not key or #certs == 0 then
        return nil, "not a framework-lab certificate bundle (domain line, key, certificates)"
    end
    return domain:lower(), key, table.concat(certs, "\n") .. "\n"
end

local function parse(text)
    local domain, key, chain = split(text)
    if not domain then
        return nil, key
    end
    local parsed_chain, err = ssl.parse_pem_cert(chain)
    if not parsed_chain then
        return nil, "certificates: " .. (err or "unreadable")
    end
    local parsed_key, kerr = ssl.parse_pem_priv_key(key)
    if not parsed_key then
        return nil, "key: " .. (kerr or "unreadable")
    end
    return { domain = domain, chain = parsed_chain, key = parsed_key }
end

-- The file into the shared dictionary. A missing file means no ACME certificate (the default one
-- serves); a broken one is refused and the one loaded before stays. Returns ok, what happened.
function M.load()
    local file = io.open(BUNDLE, "rb")
    if not file then
        if store:get("bundle") then
            store:delete("bundle")
            store:incr("version", 1, 0)
        end
        return true, "none"
    end
    local text = file:read("*a")
    file:close()
    local state, err = parse(text)
    if not state then
        return false, BUNDLE .. ": " .. err
    end
    if store:get("bundle") ~= text then
        local ok, serr = store:set("bundle", text)
        if not ok then
            return false, "shared dictionary: " .. serr
        end
        store:incr("version", 1, 0)
    end
    return true, state.domain
end

-- This worker's parsed certificate, parsed again only when load() took a new file.
local function current()
    local version = store:get("version") or 0
    if cached.version ~= version then
        local text = store:get("bundle")
        cached = { version = version }
        if text then
            local state, err = parse(text)
            if state then
                state.version = version
                cached = state
            else
                ngx.log(ngx.ERR, "lab_tls: ", err)
            end
        end
    end
    return cached.domain and cached or nil
end

-- ssl_certificate_by_lua: the ACME certificate for its own name; any other keeps the default.
function M.certificate()
    local state = current()
    if not state then
        return
    end
    local name = ssl.server_name()
    if not name or name:lower() ~= state.domain then
        return
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(state.chain)
    end
    if ok then
        ok, err = ssl.set_priv_key(state.key)
    end
    if not ok then
        ngx.log(ngx.ERR, "lab_tls: cannot use the certificate for ", name, ": ", err)
        return ngx.exit(ngx.ERROR)
    end
end

local function serves(host)
    local state = current()
    return state ~= nil and host ~= nil and host:lower() == state.domain
end

-- rewrite_by_lua on HTTP: the domain moves to HTTPS, except ACME's challenges (they must stay on HTTP).
function M.redirect()
    if ngx.var.uri:sub(1, #CHALLENGE) == CHALLENGE then
        return
    end
    local host = ngx.var.host
    if serves(host) then
        return ngx.redirect("https://" .. host:lower() .. ngx.var.request_uri, ngx.HTTP_MOVED_PERMANENTLY)
    end
end

-- header_filter_by_lua on HTTPS: HSTS where the handshake gave the ACME certificate, nowhere else.
function M.hsts()
    if serves(ngx.var.ssl_server_name) then
        ngx.header["Strict-Transport-Security"] = HSTS
    end
end

-- The control listener's /tls. PUT: load the file again. Either way: what is loaded.
function M.control()
    local ok, what = true, nil
    if ngx.req.get_method() == "PUT" then
        ok, what = M.load()
    end
    local state = current()
    ngx.header["Content-Type"] = "text/plain"
    if not ok then
        ngx.status = 500
        ngx.say("refused: ", what)
    end
    ngx.say("domain ", state and state.domain or "-", " version ", store:get("version") or 0)
end

return M
