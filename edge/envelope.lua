-- CRM REST envelope (see edge/README.md). First HTTP filter: its request side vets ids and
-- strips spoofed identity headers; its response side runs last, after the transcoder, and
-- wraps every REST answer (upstream or Envoy's own) as
--   {"success","data","meta":{"timestamp","version","requestId","pagination"?},"errors"}
-- Native gRPC and raw google.api.HttpBody answers pass through untouched.

local NS = "crm.edge"
local LOCAL_MARK = "x-crm-local-reply" -- added by local_reply_config to Envoy's own replies

local GRPC_NAMES = { [0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
  "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" }

local GRPC_HTTP = { [0] = 200, [3] = 400, [4] = 504, [5] = 404, [6] = 409, [7] = 403, [8] = 429,
  [9] = 400, [10] = 409, [11] = 400, [12] = 501, [14] = 503, [16] = 401 }

local LOCAL_CODES = { [400] = "BAD_REQUEST", [401] = "UNAUTHENTICATED", [403] = "PERMISSION_DENIED",
  [404] = "NOT_FOUND", [405] = "METHOD_NOT_ALLOWED", [408] = "REQUEST_TIMEOUT",
  [413] = "PAYLOAD_TOO_LARGE", [429] = "RATE_LIMITED", [431] = "HEADERS_TOO_LARGE",
  [500] = "INTERNAL", [501] = "UNIMPLEMENTED", [502] = "BAD_GATEWAY", [503] = "UNAVAILABLE",
  [504] = "GATEWAY_TIMEOUT" }

local MESSAGES = { [400] = "Bad request", [401] = "Authentication required",
  [403] = "Permission denied", [404] = "Not found", [405] = "Method not allowed",
  [408] = "Request timeout", [409] = "Conflict", [412] = "Precondition failed", [413] = "Request body too large",
  [422] = "Validation failed", [429] = "Too many requests", [431] = "Request headers too large",
  [500] = "Internal server error", [501] = "Not implemented", [502] = "Bad gateway",
  [503] = "Service unavailable", [504] = "Gateway timeout" }

-- Headers a service may set on its REST answer, sent as `x-crm-header-<name>` metadata (see
-- services.kernel.context.set_response_header); any other x-crm-header-* is dropped.
local FORWARDED_HEADERS = { "cache-control", "pragma", "location", "retry-after", "www-authenticate", "etag" }

-- Envoy's own text helps the caller here (transcoder parse errors, JWT verdicts); elsewhere it
-- would only leak internals (upstream reset reasons ...).
local KEEP_LOCAL_TEXT = { [400] = true, [401] = true }

math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000))

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Envoy's own messages quote the client's bytes (the transcoder's JSON parse errors), and a
-- byte cap can cut a character: keep valid UTF-8 and turn anything else into U+FFFD, so the
-- answer stays JSON.
local function utf8_clean(s)
  if not s:find("[\128-\255]") then
    return s
  end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = 0
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
    end
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for k = i + 1, i + len - 1 do
        local b = s:byte(k)
        if b < 0x80 or b > 0xBF then
          ok = false
          break
        end
      end
      local c2 = s:byte(i + 1)
      -- overlong forms, UTF-16 surrogates, beyond U+10FFFF
      if ok and ((c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90)
          or (c == 0xF4 and c2 > 0x8F)) then
        ok = false
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "\239\191\189"
      i = i + 1
    end
  end
  return table.concat(out)
end

local function json_string(s)
  return '"' .. utf8_clean(s):gsub('[%c"\\]', function(c)
    return ESC[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function error_list(code, message, field)
  return '[{"code":' .. json_string(code) .. ',"message":' .. json_string(message) .. ',"field":'
    .. json_string(field or "") .. "}]"
end

local function strip(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Stripped and capped: for messages, never for data.
local function trim(s)
  return strip(s):sub(1, 1000)
end

local function new_request_id()
  -- Correlation id only (not a secret), so math.random is enough.
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r(0, 0xffff), r(0, 0xffff),
    r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

local function remove_matching(map, all)
  if map == nil then
    return
  end
  local drop = {}
  for k, _ in pairs(map) do
    if all or k:sub(1, 5) == "grpc-" or k:sub(1, 6) == "x-crm-" or k:sub(1, 8) == "x-envoy-" then
      drop[#drop + 1] = k
    end
  end
  for _, k in ipairs(drop) do
    map:remove(k)
  end
end

-- Top-level members of a JSON object as raw text, key -> value. Needed only to emulate the
-- proto's `response_body` (Envoy 1.40 refuses it for non-HttpBody fields) and to lift a
-- PageInfo field into meta.pagination; values are kept verbatim, never re-encoded.
local function members(json)
  local out = {}
  local i = json:find("{", 1, true)
  if i == nil then
    return out
  end
  i = i + 1
  local n = #json
  while i <= n do
    local ks = json:find('"', i, true)
    if ks == nil then
      break
    end
    local ke = json:find('"', ks + 1, true) -- field names carry no escapes
    local colon = ke and json:find(":", ke + 1, true)
    if colon == nil then
      break
    end
    local key = json:sub(ks + 1, ke - 1)
    local depth, j = 0, colon + 1
    while true do
      j = json:find('[{}%[%],"]', j)
      if j == nil then
        j = n + 1
        break
      end
      local c = json:sub(j, j)
      if c == '"' then
        repeat -- skip a string, minding escaped quotes
          j = json:find('["\\]', j + 1)
          if j and json:sub(j, j) == "\\" then
            j = j + 1
          elseif j then
            break
          end
        until j == nil
        if j == nil then
          j = n + 1
          break
        end
      elseif c == "{" or c == "[" then
        depth = depth + 1
      elseif depth == 0 then -- "," or the closing "}" ends this member
        break
      elseif c ~= "," then
        depth = depth - 1
      end
      j = j + 1
    end
    out[key] = strip(json:sub(colon + 1, j - 1)) -- whole: a page of records is long
    if j > n or json:sub(j, j) == "}" then
      break
    end
    i = j + 1
  end
  return out
end

local function iso_now(handle)
  local ms = handle:timestamp()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
end

function envoy_on_request(handle)
  local headers = handle:headers()
  -- x-jwt-* carry verified claims; only jwt_authn (later in the chain) may set them.
  local spoofed = {}
  for k, _ in pairs(headers) do
    if k:sub(1, 6) == "x-jwt-" then
      spoofed[#spoofed + 1] = k
    end
  end
  for _, k in ipairs(spoofed) do
    headers:remove(k)
  end
  -- gRPC metadata keys are [0-9a-z_.-] only; a header name with other characters (`|`, `$`, `#`
  -- ... are legal in HTTP) would make the service refuse the whole call with a 500. Such a
  -- header cannot mean anything to the services: drop it.
  local unnamable = {}
  for k, _ in pairs(headers) do
    if k:sub(1, 1) ~= ":" and k:find("[^%w_%.%-]") then
      unnamable[#unnamable + 1] = k
    end
  end
  for _, k in ipairs(unnamable) do
    headers:remove(k)
  end
  local rid = headers:get("x-request-id")
  if rid == nil or #rid > 128 or not rid:match("^[%w%-%._:]+$") then
    rid = new_request_id()
    headers:replace("x-request-id", rid)
  end
  local path = headers:get(":path") or ""
  local content_type = headers:get("content-type") or ""
  handle:streamInfo():dynamicMetadata():set(NS, "request", {
    id = rid,
    grpc = content_type:sub(1, 16) == "application/grpc",
    health = path == "/healthz" or path:sub(1, 9) == "/healthz?",
  })
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local ns = handle:streamInfo():dynamicMetadata():get(NS)
  local req = (ns and ns["request"]) or {}
  if req.grpc then
    headers:remove(LOCAL_MARK)
    return
  end
  local is_local = headers:get(LOCAL_MARK) ~= nil
  local route = handle:metadata()
  local grpc_status = headers:get("grpc-status")

  if not is_local and not req.health and route:get("raw") and (grpc_status == nil or grpc_status == "0") then
    -- google.api.HttpBody (CSV export, JWKS ...): stream it through with its own content type.
    remove_matching(headers, false)
    for _ in handle:bodyChunks() do
    end
    remove_matching(handle:trailers(), true)
    return
  end

  local body = handle:body(true)
  local size = body:length()
  local text = size > 0 and body:getBytes(0, size) or ""
  local trailers = handle:trailers()
  -- Handles taken before body() are dead after it (Envoy 1.40): take them again.
  headers = handle:headers()
  route = handle:metadata()
  local function field(name)
    return headers:get(name) or (trailers and trailers:get(name))
  end

  local status = tonumber(headers:get(":status")) or 500
  grpc_status = tonumber(field("grpc-status") or "")
  local server_cancelled = grpc_status == 1
  if server_cancelled then
    -- A client that cancels gets no answer at all: a CANCELLED that comes back is the server
    -- dropping a call it had not started (a stopping process does), which a retry will serve.
    grpc_status = 14
  end
  local success, data, errors, pagination = false, "null", nil, nil

  if req.health and (status == 200 or status == 503) then
    success = status == 200
    if success then
      data = '{"status":"ok"}'
    else
      errors = error_list("UNAVAILABLE", "Service unavailable")
    end
  elseif is_local or (grpc_status == nil and status >= 400) then
    local message = trim(text)
    if status == 403 and message:find("^Audiences in Jwt") then
      status = 401 -- a token minted for another audience is an invalid token
    end
    if not KEEP_LOCAL_TEXT[status] or message == "" then
      message = MESSAGES[status] or "Request failed"
    end
    success = status < 400
    if not success then
      -- The transcoder names an unknown query parameter: report it as the field.
      local field = status == 400 and message:match('^Could not find field "([^"]+)"') or ""
      errors = error_list(LOCAL_CODES[status] or "ERROR", message, field)
    end
  else
    local override = tonumber(field("x-crm-http-status") or "")
    if override ~= nil and (override < 200 or override > 599 or override == 204 or override == 304) then
      override = nil
    end
    if grpc_status == nil or grpc_status == 0 then
      success = true
      status = override or route:get("success_status") or 200
      if text ~= "" then
        data = text
      end
      pagination = field("x-crm-pagination")
      local unwrap, page_field = route:get("response_body"), route:get("pagination")
      if (unwrap or page_field) and text ~= "" then
        local m = members(text)
        if unwrap then
          data = m[unwrap] or "null"
        end
        pagination = pagination or (page_field and m[page_field])
      end
    else
      status = override or GRPC_HTTP[grpc_status] or 500
      local listed = field("x-crm-errors")
      if status == 500 then
        errors = error_list("INTERNAL", MESSAGES[500]) -- never leak internal text
      elseif listed ~= nil and listed:match("^%s*%[.*%]%s*$") then
        errors = listed
      else
        local message = (field("grpc-message") or ""):gsub("%%(%x%x)", function(h)
          return string.char(tonumber(h, 16))
        end)
        if message == "" or server_cancelled then
          message = MESSAGES[status] or "Request failed"
        end
        errors = error_list(GRPC_NAMES[grpc_status] or "UNKNOWN", message)
      end
    end
  end

  local extra_members = nil
  if not is_local and not req.health then
    for _, name in ipairs(FORWARDED_HEADERS) do
      local value = field("x-crm-header-" .. name)
      if value ~= nil then
        headers:replace(name, value)
      end
    end
    extra_members = (field("x-crm-members") or ""):match("^%s*{(.*%S.*)}%s*$")
  end

  if status == 401 and (is_local or field("x-crm-header-www-authenticate") == nil) then
    local err = (headers:get("www-authenticate") or ""):match('error="([%w_]+)"')
    headers:replace("www-authenticate", 'Bearer realm="crm-api"' .. (err and (', error="' .. err .. '"') or ""))
  end
  if status == 503 and headers:get("retry-after") == nil then
    headers:add("retry-after", "1")
  end

  local rid = req.id
  if rid == nil then -- rejected before the filters ran (e.g. an escaped slash in the path)
    rid = headers:get("x-request-id") or new_request_id()
    headers:replace("x-request-id", rid)
  end
  local meta = '{"timestamp":"' .. iso_now(handle) .. '","version":"v1","requestId":' .. json_string(rid)
  if pagination ~= nil and pagination:match("^%s*{.*}%s*$") then
    meta = meta .. ',"pagination":' .. pagination
  end
  local out = '{"success":' .. tostring(success) .. ',"data":' .. data .. ',"meta":' .. meta .. '},"errors":'
    .. (errors or "[]") .. (extra_members and ("," .. extra_members) or "") .. "}"

  remove_matching(headers, false)
  remove_matching(trailers, true)
  body:setBytes(out)
  headers:replace(":status", tostring(status))
  headers:replace("content-type", "application/json")
  headers:replace("content-length", tostring(#out))
end
