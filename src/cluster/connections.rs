//! The connection limits of the whole cluster (`max_connection_num`, `max_connection_per_ip`).
//!
//! Each node publishes its own counts, the truth it keeps in `ftp::limits::ConnectionLimits`, as a hash
//! `{cosftpd}:conn:<node>` (`total` and one field per client address) that expires after `lease_time` unless
//! renewed; `{cosftpd}:nodes` says which nodes are alive. An admission adds up the other live nodes' counts and
//! this node's counts with the newcomer, and publishes them when the limits allow, in one script. A node's counts
//! are only ever written whole (never incremented), and `ConnectionLimits` makes one admission or release of a
//! node at a time, so Redis always holds what the node last knew, and a crashed node's counts vanish with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use redis::Script;

use super::{lua_now, Cluster};

/// Why the cluster is full for a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    PerIp,
}

/// This node's side of the cluster-wide limits; cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedConnections {
    cluster: Arc<Cluster>,
}

impl SharedConnections {
    pub(super) fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    /// How often `publish_all` must run for the counts to stay alive.
    pub fn renew_every(&self) -> std::time::Duration {
        self.cluster.lease_time / 3
    }

    fn keys(&self) -> (String, String) {
        (
            self.cluster.key(&["nodes"]),
            self.cluster.key(&["conn", &self.cluster.node]),
        )
    }

    /// Whether a newcomer from `ip` fits, given this node's counts with it (`ip_count`, `total`) and the other
    /// nodes' published ones; when it does, this node's new counts are published. `None` when Redis cannot tell.
    pub async fn admit(
        &self,
        ip: IpAddr,
        ip_count: usize,
        total: usize,
        max_total: Option<usize>,
        max_per_ip: Option<usize>,
    ) -> Option<Result<(), Full>> {
        let (nodes, own) = self.keys();
        let mut invocation = ADMIT.prepare_invoke();
        invocation
            .key(nodes)
            .key(own)
            .arg(&self.cluster.node)
            .arg(self.cluster.key(&["conn", ""]))
            .arg(millis(self.cluster.lease_time))
            .arg(ip.to_string())
            .arg(ip_count)
            .arg(total)
            .arg(max_total.unwrap_or(0))
            .arg(max_per_ip.unwrap_or(0));
        let answer: String = self.cluster.eval("connection limits", invocation).await?;
        Some(match answer.as_str() {
            "total" => Err(Full::Total),
            "ip" => Err(Full::PerIp),
            _ => Ok(()),
        })
    }

    /// Publishes this node's counts for one address after a connection ended.
    pub async fn publish(&self, ip: IpAddr, ip_count: usize, total: usize) {
        let (nodes, own) = self.keys();
        let mut invocation = PUBLISH.prepare_invoke();
        invocation
            .key(nodes)
            .key(own)
            .arg(&self.cluster.node)
            .arg(millis(self.cluster.lease_time))
            .arg(ip.to_string())
            .arg(ip_count)
            .arg(total);
        let _: Option<i64> = self.cluster.eval("connection count", invocation).await;
    }

    /// Publishes all of this node's counts, replacing what Redis had (after an outage, a Redis restart, and as the
    /// periodic renewal).
    pub async fn publish_all(&self, per_ip: &HashMap<IpAddr, usize>, total: usize) {
        let (nodes, own) = self.keys();
        let mut invocation = PUBLISH_ALL.prepare_invoke();
        invocation
            .key(nodes)
            .key(own)
            .arg(&self.cluster.node)
            .arg(millis(self.cluster.lease_time))
            .arg(total);
        for (ip, count) in per_ip {
            invocation.arg(ip.to_string()).arg(*count);
        }
        let _: Option<i64> = self.cluster.eval("connection counts", invocation).await;
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// KEYS: live nodes, this node's counts. ARGV: node, key prefix of counts, lease (ms), ip, this node's count of
/// the ip with the newcomer, its total with the newcomer, max total, max per ip (0 = none).
/// 'ok' (published), 'total' or 'ip' (refused, nothing changed).
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
local node, prefix, lease, ip = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ip_sum, total_sum = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_total, max_ip = tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease)
for _, other in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if other ~= node then
    local counts = prefix .. other
    ip_sum = ip_sum + tonumber(redis.call('HGET', counts, ip) or '0')
    total_sum = total_sum + tonumber(redis.call('HGET', counts, 'total') or '0')
  end
end
if max_total > 0 and total_sum > max_total then return 'total' end
if max_ip > 0 and ip_sum > max_ip then return 'ip' end
redis.call('HSET', KEYS[2], ip, ARGV[5], 'total', ARGV[6])
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('ZADD', KEYS[1], now, node)
return 'ok'
"
    ))
});

/// KEYS: live nodes, this node's counts. ARGV: node, lease (ms), ip, its count, total.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
else
  redis.call('HDEL', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[2], 'total', ARGV[5])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
"
    ))
});

/// KEYS: live nodes, this node's counts. ARGV: node, lease (ms), total, then pairs of ip and count.
static PUBLISH_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        r"
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'total', ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
"
    ))
});
