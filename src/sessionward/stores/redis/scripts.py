"""The Lua scripts of the Redis store, shared by its sync and async clients.

Every store operation is one script, so each is atomic on the server and the sync and
async stores differ only in how they send it. ``ARGV[1]`` is always the key prefix; the
scripts build their key names from it (so the store needs one Redis server or primary:
Redis Cluster, which requires declared keys in one slot, is not supported). A script
checks everything it needs before its first write, so a script that fails writes nothing.

Data layout under the prefix ``P``:

- ``P session:<handle>`` — hash with the ``session_info`` columns of the SQL stores; its TTL is
  the time left until ``expires_at``, so an idle session disappears by itself. Fields whose
  value is ``None`` are absent, and a hash written by layout version 1 lacks the metadata
  fields: both read as the :class:`~sessionward.stores.base.SessionRow` defaults
  (``persistent`` is ``"1"`` or ``"0"``);
- ``P user:<user_id>`` — set of the user's handles (stale members pruned lazily);
- ``P expiry`` — sorted set of ``<len(handle)>:<handle><user_id>`` scored by ``expires_at``:
  lets ``delete_expired_sessions`` find expired sessions, and the user sets of sessions
  whose hash has already expired, without scanning the keyspace;
- ``P key:<name>`` — hash ``{value, created_at_time}`` of a signing key or the
  refresh-token key; ``P keys`` — sorted set (all scores 0) of key names, read by range
  for prefix listing;
- ``P schema_version`` — the layout version ``migrate`` records.

Only session hashes carry a TTL: under a ``volatile-*`` eviction policy Redis can evict
sessions (which then simply end) but never the user sets, keys or indexes.
"""

from __future__ import annotations

__all__ = ["SCRIPTS"]

_PRELUDE = r"""
local P = ARGV[1]
local IDX = P .. 'expiry'
local function skey(h) return P .. 'session:' .. h end
local function ukey(u) return P .. 'user:' .. u end
local function member(h, u) return string.len(h) .. ':' .. h .. u end
local function parse_member(m)
  local colon = string.find(m, ':', 1, true)
  local n = colon and tonumber(string.sub(m, 1, colon - 1))
  if not n then return nil, nil end
  return string.sub(m, colon + 1, colon + n), string.sub(m, colon + n + 1)
end
local function remove_session(h, u)
  redis.call('DEL', skey(h))
  redis.call('SREM', ukey(u), h)
  redis.call('ZREM', IDX, member(h, u))
end
"""

# ARGV: P, handle, user_id, ttl_ms, expires_at, created_at_time, hash2, field/value pairs...
_INSERT = r"""
local h, u = ARGV[2], ARGV[3]
local k = skey(h)
if redis.call('EXISTS', k) == 1 then
  local cur = redis.call('HMGET', k, 'user_id', 'refresh_token_hash_2', 'created_at_time')
  if cur[1] == u and cur[2] == ARGV[7] and cur[3] == ARGV[6] then
    return 0  -- the same row: a retried insert whose first reply was lost
  end
  return redis.error_reply('sessionward: session handle already exists')
end
redis.call('HSET', k, unpack(ARGV, 8))
redis.call('PEXPIRE', k, ARGV[4])
redis.call('SADD', ukey(u), h)
redis.call('ZADD', IDX, ARGV[5], member(h, u))
return 1
"""

# ARGV: P, handle
_GET = r"""
return redis.call('HGETALL', skey(ARGV[2]))
"""

# ARGV: P, handle, user_id, expected hash2, new hash2, now, expires_at, max lifetime ('' =
# none), max payload JSON length ('' = none), ip, user agent (each '' = not given, else '='
# and the value) -> {1 if changed else 0, the row's fields}
_PROMOTE_RETURNING = r"""
local h = ARGV[2]
local k = skey(h)
local cur = redis.call('HMGET', k, 'user_id', 'refresh_token_hash_2', 'expires_at', 'created_at_time',
  'refresh_validity')
if cur[1] and cur[1] == ARGV[3] and cur[2] == ARGV[4] then
  local now, exp, created = tonumber(ARGV[6]), tonumber(cur[3]), tonumber(cur[4])
  local life, limit = tonumber(ARGV[8]), tonumber(ARGV[9])
  if exp and created and now <= exp and (not life or now <= created + life)
      and (not limit or redis.call('HSTRLEN', k, 'jwt_user_payload') <= limit) then
    -- Promotion.deadline: the asked deadline, shortened to the session's own idle
    -- lifetime, capped by the maximum lifetime.
    local deadline = tonumber(ARGV[7])
    local own = tonumber(cur[5])
    if own and now + own < deadline then deadline = now + own end
    if life and created + life < deadline then deadline = created + life end
    deadline = string.format('%d', deadline)
    redis.call('HSET', k, 'refresh_token_hash_2', ARGV[5], 'prev_refresh_token_hash_2', ARGV[4],
      'rotated_at', ARGV[6], 'last_active_at', ARGV[6], 'expires_at', deadline)
    if string.len(ARGV[10]) > 0 then redis.call('HSET', k, 'last_ip', string.sub(ARGV[10], 2)) end
    if string.len(ARGV[11]) > 0 then
      redis.call('HSET', k, 'last_user_agent', string.sub(ARGV[11], 2))
    end
    redis.call('PEXPIRE', k, string.format('%d', math.max(1, tonumber(deadline) - now)))
    redis.call('SADD', ukey(cur[1]), h)
    redis.call('ZADD', IDX, deadline, member(h, cur[1]))
    return {1, redis.call('HGETALL', k)}
  end
end
return {0, redis.call('HGETALL', k)}
"""

# ARGV: P, handles... -> the handles that existed
_DELETE = r"""
local out = {}
for i = 2, #ARGV do
  local h = ARGV[i]
  local u = redis.call('HGET', skey(h), 'user_id')
  if u then
    remove_session(h, u)
    table.insert(out, h)
  elseif redis.call('DEL', skey(h)) == 1 then
    table.insert(out, h)
  end
end
return out
"""

# ARGV: P, user_id -> flat list of handle, created_at_time
_DELETE_FOR_USER = r"""
local u = ARGV[2]
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', ukey(u))) do
  local f = redis.call('HMGET', skey(h), 'user_id', 'created_at_time')
  if f[1] == u then
    table.insert(out, h)
    table.insert(out, f[2] or '0')
  end
  if not f[1] or f[1] == u then
    remove_session(h, u)
  end
end
redis.call('DEL', ukey(u))
return out
"""

# ARGV: P, user_id, keep -> flat list of handle, created_at_time of the sessions deleted
_DELETE_OTHERS = r"""
local u, keep = ARGV[2], ARGV[3]
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', ukey(u))) do
  local f = redis.call('HMGET', skey(h), 'user_id', 'created_at_time')
  if f[1] == u and h ~= keep then
    table.insert(out, h)
    table.insert(out, f[2] or '0')
    remove_session(h, u)
  elseif not f[1] then
    remove_session(h, u)
  end
end
return out
"""

# ARGV: P, user_id, now -> flat list of handle, created_at_time (stale members pruned)
_HANDLES_FOR_USER = r"""
local u, now = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', ukey(u))) do
  local f = redis.call('HMGET', skey(h), 'user_id', 'expires_at', 'created_at_time')
  if not f[1] then
    redis.call('SREM', ukey(u), h)
    redis.call('ZREM', IDX, member(h, u))
  elseif f[1] == u and tonumber(f[2]) and tonumber(f[2]) >= now then
    table.insert(out, h)
    table.insert(out, f[3] or '0')
  end
end
return out
"""

# ARGV: P, user_id, now -> list of the live sessions' hashes, each a flat field/value list
# (stale members pruned)
_SESSIONS_FOR_USER = r"""
local u, now = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', ukey(u))) do
  local f = redis.call('HMGET', skey(h), 'user_id', 'expires_at')
  if not f[1] then
    redis.call('SREM', ukey(u), h)
    redis.call('ZREM', IDX, member(h, u))
  elseif f[1] == u and tonumber(f[2]) and tonumber(f[2]) >= now then
    table.insert(out, redis.call('HGETALL', skey(h)))
  end
end
return out
"""

# ARGV: P, handle, field/value pairs -> whether the session exists
_UPDATE_FIELD = r"""
local k = skey(ARGV[2])
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, unpack(ARGV, 3))
return 1
"""

# ARGV: P, now, batch size -> {flat list of handle, user_id of the expired index entries
# removed (whether their hash was still there or Redis had already expired it), index
# entries examined}
_SWEEP = r"""
local now = tonumber(ARGV[2])
local batch = redis.call('ZRANGEBYSCORE', IDX, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local removed = {}
for _, m in ipairs(batch) do
  local h, u = parse_member(m)
  if not h then
    redis.call('ZREM', IDX, m)
  else
    local exp = redis.call('HGET', skey(h), 'expires_at')
    if exp and tonumber(exp) and tonumber(exp) >= now then
      redis.call('ZADD', IDX, exp, m)  -- index out of date: the session is alive
    else
      table.insert(removed, h)
      table.insert(removed, u)
      remove_session(h, u)
    end
  end
end
return {removed, #batch}
"""

# ARGV: P, name prefix -> flat list of name, value, created_at_time
_LOAD_KEYS = r"""
local index = P .. 'keys'
local names
if ARGV[2] == '' then
  names = redis.call('ZRANGEBYLEX', index, '-', '+')
else
  names = redis.call('ZRANGEBYLEX', index, '[' .. ARGV[2], '(' .. ARGV[2] .. '\255')
end
local out = {}
for _, n in ipairs(names) do
  local v = redis.call('HMGET', P .. 'key:' .. n, 'value', 'created_at_time')
  if v[1] then
    table.insert(out, n)
    table.insert(out, v[1])
    table.insert(out, v[2] or '0')
  else
    redis.call('ZREM', index, n)
  end
end
return out
"""

# ARGV: P, name, value, created_at_time -> {value, created_at_time} now stored
_INSERT_KEY = r"""
local k = P .. 'key:' .. ARGV[2]
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'value', ARGV[3], 'created_at_time', ARGV[4])
end
redis.call('ZADD', P .. 'keys', 0, ARGV[2])
local v = redis.call('HMGET', k, 'value', 'created_at_time')
return {v[1], v[2] or '0'}
"""

# ARGV: P, names...
_DELETE_KEYS = r"""
for i = 2, #ARGV do
  redis.call('DEL', P .. 'key:' .. ARGV[i])
  redis.call('ZREM', P .. 'keys', ARGV[i])
end
return #ARGV - 1
"""

# ARGV: P, version -> the version now recorded
_MIGRATE = r"""
local k = P .. 'schema_version'
local cur = tonumber(redis.call('GET', k) or '0') or 0
if cur < tonumber(ARGV[2]) then
  redis.call('SET', k, ARGV[2])
  return tonumber(ARGV[2])
end
return cur
"""

# ARGV: P -> the recorded version or nil
_SCHEMA_VERSION = r"""
return redis.call('GET', P .. 'schema_version')
"""

SCRIPTS: dict[str, str] = {
    name: _PRELUDE + body
    for name, body in {
        "insert": _INSERT,
        "get": _GET,
        "promote_returning": _PROMOTE_RETURNING,
        "delete": _DELETE,
        "delete_for_user": _DELETE_FOR_USER,
        "delete_others": _DELETE_OTHERS,
        "handles_for_user": _HANDLES_FOR_USER,
        "sessions_for_user": _SESSIONS_FOR_USER,
        "update_field": _UPDATE_FIELD,
        "sweep": _SWEEP,
        "load_keys": _LOAD_KEYS,
        "insert_key": _INSERT_KEY,
        "delete_keys": _DELETE_KEYS,
        "migrate": _MIGRATE,
        "schema_version": _SCHEMA_VERSION,
    }.items()
}
