-- Purge expired revocation records, then return every record left.
-- KEYS as in revocation_write.lua. ARGV[1] now.
-- Returns {flat jti hash, flat user hash}.
local gone = redis.call("zrangebyscore", KEYS[3], "-inf", tonumber(ARGV[1]))
for _, member in ipairs(gone) do
  local hash = KEYS[2]
  if string.sub(member, 1, 1) == "t" then hash = KEYS[1] end
  redis.call("hdel", hash, string.sub(member, 3))
  redis.call("zrem", KEYS[3], member)
end
return {redis.call("hgetall", KEYS[1]), redis.call("hgetall", KEYS[2])}
