-- Write one revocation record (merged with the one it replaces) and announce it.
-- KEYS[1] hash jti -> expiry, KEYS[2] hash user key -> "issued_before:expiry",
-- KEYS[3] sorted set "t:<jti>" / "u:<user key>" -> expiry (unix seconds).
-- ARGV[1] now, ARGV[2] "t" or "u", ARGV[3] jti or user key, ARGV[4] issued_before,
-- ARGV[5] expiry, ARGV[6] notification channel, ARGV[7] most records to purge.
-- Returns {expiry, issued_before} of the record as stored.
local now = tonumber(ARGV[1])
local kind, field = ARGV[2], ARGV[3]
local before, expiry = tonumber(ARGV[4]), tonumber(ARGV[5])

-- Purge lazily: records whose expiry passed, a bounded number per write.
local gone = redis.call("zrangebyscore", KEYS[3], "-inf", now, "limit", 0, tonumber(ARGV[7]))
for _, member in ipairs(gone) do
  local hash = KEYS[2]
  if string.sub(member, 1, 1) == "t" then hash = KEYS[1] end
  redis.call("hdel", hash, string.sub(member, 3))
  redis.call("zrem", KEYS[3], member)
end

-- Records only become stricter: keep the larger expiry and issued_before.
if kind == "t" then
  local old = tonumber(redis.call("hget", KEYS[1], field) or "0")
  if old > expiry then expiry = old end
  redis.call("hset", KEYS[1], field, string.format("%d", expiry))
else
  local old = redis.call("hget", KEYS[2], field)
  if old then
    local sep = string.find(old, ":", 1, true)
    local old_before, old_expiry = tonumber(string.sub(old, 1, sep - 1)), tonumber(string.sub(old, sep + 1))
    if old_before > before then before = old_before end
    if old_expiry > expiry then expiry = old_expiry end
  end
  redis.call("hset", KEYS[2], field, string.format("%d:%d", before, expiry))
end
redis.call("zadd", KEYS[3], expiry, kind .. ":" .. field)

-- The keys themselves vanish once their last record expired (a safety net for idle sets).
local last = redis.call("zrange", KEYS[3], -1, -1, "withscores")
if last[2] then
  for _, key in ipairs(KEYS) do
    redis.call("expireat", key, math.floor(tonumber(last[2])) + 1)
  end
end

redis.call("publish", ARGV[6], cjson.encode({k = kind, f = field, b = before, e = expiry}))
return {expiry, before}
