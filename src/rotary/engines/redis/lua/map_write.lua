-- Write, remove or expire one key of a map channel, atomically, and broadcast the change.
-- KEYS[1] meta hash (e = epoch, s = top offset), KEYS[2] state hash (key -> "<offset>:<body>"),
-- KEYS[3] key index (sorted set, all scores 0, for paging by key), KEYS[4] change stream,
-- KEYS[5] key expiry (sorted set, key -> expiry ms), KEYS[6] idempotency result,
-- KEYS[7] the shard's set of channels with expiring keys.
-- ARGV[1] op: "p" write, "r" remove, "x" remove if its expiry has passed; ARGV[2] key;
-- ARGV[3] body; ARGV[4] key mode ("", "if_new", "if_exists"); ARGV[5] "1": refresh the TTL
-- of a write suppressed by the key mode; ARGV[6] key ttl ms; ARGV[7] stream size;
-- ARGV[8] stream ttl ms; ARGV[9] meta ttl ms (0: never expires); ARGV[10] epoch for a new
-- channel; ARGV[11] idempotency ttl ms (0: none); ARGV[12] now ms; ARGV[13] PUB/SUB channel ("": publish nothing);
-- ARGV[14] message head (the channel and key, length-prefixed); ARGV[15] the channel name;
-- ARGV[16] "1": a write of an existing key also broadcasts the key's previous body (the
-- delta base), the message then marked "2" instead of "0" and the old body framed before
-- the new one. ARGV[17] version (0: none), ARGV[18] version epoch: kept in the meta hash
-- as "v:<key>" and "ve:<key>", they go with the key and with the channel's epoch.
-- Returns {offset, epoch, suppress reason ("" when the change was made)}.
local idem_ttl = tonumber(ARGV[11])
if idem_ttl > 0 then
  local seen = redis.call("get", KEYS[6])
  if seen then
    local sep = string.find(seen, ":", 1, true)
    return {tonumber(string.sub(seen, 1, sep - 1)), string.sub(seen, sep + 1), "idempotency"}
  end
end

local epoch = redis.call("hget", KEYS[1], "e")
if not epoch then
  -- A new channel, or its meta expired: a new epoch, and nothing of the old one survives.
  epoch = ARGV[10]
  redis.call("del", KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  redis.call("hset", KEYS[1], "e", epoch, "s", 0)
end
local top = tonumber(redis.call("hget", KEYS[1], "s"))
local op, key, now = ARGV[1], ARGV[2], tonumber(ARGV[12])
local exists = redis.call("hexists", KEYS[2], key) == 1
local key_ttl = tonumber(ARGV[6])

if op == "x" then
  local at = redis.call("zscore", KEYS[5], key)
  if not at or tonumber(at) > now then
    return {top, epoch, "not_due"}
  end
  if not exists then
    redis.call("zrem", KEYS[5], key)
    return {top, epoch, "not_due"}
  end
elseif op == "p" then
  local version = tonumber(ARGV[17])
  if version > 0 and exists then
    local stored = redis.call("hmget", KEYS[1], "v:" .. key, "ve:" .. key)
    if stored[1] and version <= tonumber(stored[1]) and (ARGV[18] == "" or ARGV[18] == stored[2]) then
      return {top, epoch, "version"}
    end
  end
  local mode = ARGV[4]
  if (mode == "if_new" and exists) or (mode == "if_exists" and not exists) then
    if exists and ARGV[5] == "1" and key_ttl > 0 then
      redis.call("zadd", KEYS[5], now + key_ttl, key)
    end
    if exists then
      return {top, epoch, "key_exists"}
    end
    return {top, epoch, "key_not_found"}
  end
elseif not exists then
  return {top, epoch, "key_not_found"}
end

top = redis.call("hincrby", KEYS[1], "s", 1)
local removed, prev = "0", ""
if op == "p" then
  if ARGV[16] == "1" and exists then
    local old = redis.call("hget", KEYS[2], key)
    local sep = string.find(old, ":", 1, true)
    prev = string.sub(old, sep + 1)
    prev = string.len(prev) .. ":" .. prev
  end
  redis.call("hset", KEYS[2], key, top .. ":" .. ARGV[3])
  if tonumber(ARGV[17]) > 0 then
    redis.call("hset", KEYS[1], "v:" .. key, ARGV[17], "ve:" .. key, ARGV[18])
  end
  redis.call("zadd", KEYS[3], 0, key)
  if key_ttl > 0 then
    redis.call("zadd", KEYS[5], now + key_ttl, key)
    redis.call("zadd", KEYS[7], 0, ARGV[15])
  end
else
  removed = "1"
  redis.call("hdel", KEYS[2], key)
  redis.call("hdel", KEYS[1], "v:" .. key, "ve:" .. key)
  redis.call("zrem", KEYS[3], key)
  redis.call("zrem", KEYS[5], key)
end

local size = tonumber(ARGV[7])
if size > 0 then
  redis.call("xadd", KEYS[4], "MAXLEN", size, top .. "-0", "k", key, "r", removed, "b", ARGV[3])
  redis.call("pexpire", KEYS[4], ARGV[8])
end
local meta_ttl = tonumber(ARGV[9])
if meta_ttl > 0 then
  for i = 1, 3 do
    redis.call("pexpire", KEYS[i], meta_ttl)
  end
  redis.call("pexpire", KEYS[5], meta_ttl)
end

local mark = removed
if prev ~= "" then
  mark = "2"
end
if ARGV[13] ~= "" then
  redis.call("publish", ARGV[13], top .. "|" .. epoch .. "|" .. mark .. ARGV[14] .. prev .. ARGV[3])
end
if idem_ttl > 0 then
  redis.call("set", KEYS[6], top .. ":" .. epoch, "PX", idem_ttl, "NX")
end
return {top, epoch, ""}
