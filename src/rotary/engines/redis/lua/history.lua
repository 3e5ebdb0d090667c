-- Read a channel's position and, if asked, a range of its history stream.
-- KEYS[1] history stream, KEYS[2] meta hash.
-- ARGV[1] "1" to read publications, ARGV[2] first id, ARGV[3] last id,
-- ARGV[4] max count (0: no limit), ARGV[5] "1" for newest first,
-- ARGV[6] meta ttl ms (0: leave the expiry alone), ARGV[7] epoch to use if none.
-- Returns {top offset, epoch, entries}.
local epoch = redis.call("hget", KEYS[2], "e")
if not epoch then
  epoch = ARGV[7]
  redis.call("del", KEYS[1], KEYS[2])
  redis.call("hset", KEYS[2], "e", epoch)
end
local top = tonumber(redis.call("hget", KEYS[2], "s") or "0")
local meta_ttl = tonumber(ARGV[6])
if meta_ttl > 0 then
  redis.call("pexpire", KEYS[2], meta_ttl)
end

local entries = {}
if ARGV[1] == "1" then
  local cmd = "xrange"
  if ARGV[5] == "1" then
    cmd = "xrevrange"
  end
  local count = tonumber(ARGV[4])
  if count > 0 then
    entries = redis.call(cmd, KEYS[1], ARGV[2], ARGV[3], "COUNT", count)
  else
    entries = redis.call(cmd, KEYS[1], ARGV[2], ARGV[3])
  end
end
return {top, epoch, entries}
