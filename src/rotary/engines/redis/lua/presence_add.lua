-- Add or refresh one presence entry.
-- KEYS[1] hash client id -> info frame, KEYS[2] sorted set client id -> expiry (unix s).
-- ARGV[1] client id, ARGV[2] info frame, ARGV[3] expiry, ARGV[4] key expiry ms.
redis.call("zadd", KEYS[2], ARGV[3], ARGV[1])
redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
-- Only lengthen the keys' own expiry: it is a safety net for channels nobody refreshes.
local key_ttl = tonumber(ARGV[4])
for _, key in ipairs(KEYS) do
  if redis.call("pttl", key) < key_ttl then
    redis.call("pexpire", key, key_ttl)
  end
end
return 1
