//! The login lockout of the whole cluster: failures per client address, bans, and the password checks in flight,
//! with the rules of `ftp::auth::LoginGuard` (which calls this and falls back to its own table when Redis is away).
//!
//! Per address, `{cosftpd}:login:<ip>` holds `count`, `first` (when counting began) and `until` (the ban's end),
//! in milliseconds of Redis's clock; `{cosftpd}:login-slots:<ip>` holds the checks under way, each with a deadline,
//! so a node that dies in the middle of a check does not hold its slot for longer than [`SLOT_TIME`].

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::{lua_now, Cluster};

/// How long a password check may hold its slot if its node never says how it ended.
pub const SLOT_TIME: Duration = Duration::from_secs(30);

/// What the lockout rules are (`login_fail_limit`, `login_fail_window`, `login_ban_time`).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub limit: u32,
    pub window: Duration,
    pub ban: Duration,
}

impl Rules {
    /// How long an address's record must outlive its last change.
    fn horizon(&self) -> Duration {
        self.window.max(self.ban) + Duration::from_secs(1)
    }
}

/// The answer to "may this address check a password now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Yes; the slot is named by this id until `end`.
    Granted(String),
    /// Not yet: the failures and checks in flight reach the limit.
    Wait,
    /// The address is locked out.
    Banned,
}

/// The cluster's lockout; cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedLockout {
    cluster: Arc<Cluster>,
    next_slot: Arc<AtomicU64>,
}

impl SharedLockout {
    pub(super) fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            next_slot: Arc::default(),
        }
    }

    fn keys(&self, ip: IpAddr) -> (String, String) {
        let ip = ip.to_string();
        (
            self.cluster.key(&["login", &ip]),
            self.cluster.key(&["login-slots", &ip]),
        )
    }

    /// Whether the address is locked out; `None` when Redis cannot tell.
    pub async fn is_banned(&self, ip: IpAddr) -> Option<bool> {
        let (state, _) = self.keys(ip);
        let mut invocation = IS_BANNED.prepare_invoke();
        invocation.key(state);
        let banned: i64 = self.cluster.eval("lockout check", invocation).await?;
        Some(banned == 1)
    }

    /// Takes a slot for a password check if the address has one free; `None` when Redis cannot tell.
    pub async fn try_begin(&self, ip: IpAddr, rules: Rules) -> Option<Begin> {
        let (state, slots) = self.keys(ip);
        let slot = format!(
            "{}/{}/{}",
            self.cluster.node,
            self.cluster.instance,
            self.next_slot.fetch_add(1, Ordering::Relaxed)
        );
        let mut invocation = BEGIN.prepare_invoke();
        invocation
            .key(state)
            .key(slots)
            .arg(rules.limit)
            .arg(millis(rules.window))
            .arg(millis(SLOT_TIME))
            .arg(millis(rules.horizon()))
            .arg(&slot);
        let answer: i64 = self.cluster.eval("login slot", invocation).await?;
        Some(match answer {
            1 => Begin::Granted(slot),
            0 => Begin::Wait,
            _ => Begin::Banned,
        })
    }

    /// Gives the slot back, counting a success (`Some(true)`) or a failure (`Some(false)`); true when that failure
    /// locked the address out. `None` when Redis did not hear it.
    pub async fn end(
        &self,
        ip: IpAddr,
        slot: &str,
        result: Option<bool>,
        rules: Rules,
    ) -> Option<bool> {
        let (state, slots) = self.keys(ip);
        let result = match result {
            Some(true) => "ok",
            Some(false) => "fail",
            None => "none",
        };
        let mut invocation = END.prepare_invoke();
        invocation
            .key(state)
            .key(slots)
            .arg(rules.limit)
            .arg(millis(rules.ban))
            .arg(millis(rules.horizon()))
            .arg(slot)
            .arg(result);
        let locked: i64 = self.cluster.eval("login result", invocation).await?;
        Some(locked == 1)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// KEYS: the address's record. 1 while a ban runs.
static IS_BANNED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if ends > now then return 1 end
return 0
"
    ))
});

/// KEYS: the record, the slots. ARGV: limit, window, slot time, horizon (ms), slot id.
/// 1 granted, 0 wait, -1 banned. As `LoginGuard::try_begin`: a ban or window that is over starts counting afresh.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
local limit, window, slot_time, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ends = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if ends > now then return -1 end
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '0')
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
if ends > 0 or now - first > window then
  count = 0
  redis.call('HSET', KEYS[1], 'count', 0, 'first', now, 'until', 0)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[2])
if count + in_flight >= limit then return 0 end
redis.call('ZADD', KEYS[2], now + slot_time, ARGV[5])
redis.call('PEXPIRE', KEYS[2], slot_time)
redis.call('PEXPIRE', KEYS[1], horizon)
return 1
"
    ))
});

/// KEYS: the record, the slots. ARGV: limit, ban, horizon (ms), slot id, ok|fail|none. 1 when this failure locked
/// the address out.
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
local limit, ban, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
local locked = 0
if ARGV[5] == 'fail' then
  if redis.call('HEXISTS', KEYS[1], 'first') == 0 then redis.call('HSET', KEYS[1], 'first', now) end
  local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
  if count >= limit then
    redis.call('HSET', KEYS[1], 'until', now + ban, 'count', 0, 'first', now)
    locked = 1
  end
elseif ARGV[5] == 'ok' then
  redis.call('HSET', KEYS[1], 'count', 0, 'first', now)
end
redis.call('PEXPIRE', KEYS[1], horizon)
return locked
"
    ))
});
