-- Drop expired presence entries, then return the live ones.
-- KEYS[1] hash client id -> info frame, KEYS[2] sorted set client id -> expiry (unix s).
-- ARGV[1] now (unix s). Returns the hash as a flat {client id, info frame, ...} list.
local expired = redis.call("zrangebyscore", KEYS[2], "-inf", ARGV[1])
if #expired > 0 then
  for i = 1, #expired, 1000 do
    redis.call("hdel", KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
  end
  redis.call("zremrangebyscore", KEYS[2], "-inf", ARGV[1])
end
return redis.call("hgetall", KEYS[1])
