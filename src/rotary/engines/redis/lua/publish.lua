-- Store (optionally) and broadcast one publication, atomically.
-- KEYS[1] history stream, KEYS[2] meta hash (e = epoch, s = top offset),
-- KEYS[3] idempotency result key.
-- ARGV[1] PUB/SUB channel, ARGV[2] publication body, ARGV[3] history size (0: no history),
-- ARGV[4] history ttl ms, ARGV[5] meta ttl ms (0: meta never expires),
-- ARGV[6] epoch to use if the stream has none, ARGV[7] idempotency ttl ms (0: no key).
-- Returns {offset, epoch, 1 if an earlier result was returned instead}.
local result_ttl = tonumber(ARGV[7])
if result_ttl > 0 then
  local seen = redis.call("get", KEYS[3])
  if seen then
    local sep = string.find(seen, ":", 1, true)
    return {tonumber(string.sub(seen, 1, sep - 1)), string.sub(seen, sep + 1), 1}
  end
end

local offset = 0
local epoch = ""
local size = tonumber(ARGV[3])
if size > 0 then
  epoch = redis.call("hget", KEYS[2], "e")
  if not epoch then
    -- The meta was lost (TTL, restart): start a new incarnation and drop stale entries,
    -- whose ids would otherwise collide with the restarted offsets.
    epoch = ARGV[6]
    redis.call("del", KEYS[1], KEYS[2])
    redis.call("hset", KEYS[2], "e", epoch)
  end
  offset = redis.call("hincrby", KEYS[2], "s", 1)
  redis.call("xadd", KEYS[1], "MAXLEN", size, offset .. "-0", "d", ARGV[2])
  redis.call("pexpire", KEYS[1], ARGV[4])
  local meta_ttl = tonumber(ARGV[5])
  if meta_ttl > 0 then
    redis.call("pexpire", KEYS[2], meta_ttl)
  end
end

redis.call("publish", ARGV[1], "p" .. offset .. ":" .. epoch .. ":" .. ARGV[2])
if result_ttl > 0 then
  redis.call("set", KEYS[3], offset .. ":" .. epoch, "PX", result_ttl, "NX")
end
return {offset, epoch, 0}
