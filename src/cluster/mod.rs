//! Several gateways in front of one bucket: the small state they must share lives on Redis.
//!
//! The bucket holds the data and is shared already. What the nodes share here is small: failed-login counters and
//! bans (`lockout`), the connections of each node for the global limits (`connections`), and who is writing which
//! name (`leases`). Every decision is one Lua script, so it is atomic across nodes, and every time is Redis's own
//! (`TIME`), so the nodes' clocks do not matter. Everything a node writes expires unless the node renews it: a
//! crashed node's connections and leases lapse after `lease_time`.
//!
//! When Redis cannot be reached, a node decides alone with its local state (today's single-node behaviour) and
//! says so once at WARN; the heartbeat probes Redis every third of `lease_time` and shared decisions resume when it
//! answers (logged at INFO). Logins are never refused because Redis is down.
//!
//! All keys carry the hash tag `{cosftpd}`: on a Redis Cluster they land in one slot, which the scripts need.

pub mod connections;
pub mod leases;
pub mod lockout;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation};
use tracing::{info, warn};

use crate::config;

pub use connections::SharedConnections;
pub use leases::RedisWriterLeases;
pub use lockout::SharedLockout;

/// How long one Redis round trip may take before the node decides alone. A healthy Redis answers in well under a
/// millisecond; this only bounds a stalled one.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// The prefix of every key (see the module's documentation).
const PREFIX: &str = "{cosftpd}";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("[CLUSTER] redis_url: {0}")]
    Url(#[source] redis::RedisError),
}

/// This node's handle on the shared state.
pub struct Cluster {
    node: String,
    /// This process among the incarnations of the node (a restarted node has the same name).
    instance: String,
    lease_time: Duration,
    /// Where Redis is, for log lines (never the URL: it may carry a password).
    server: String,
    conn: ConnectionManager,
    reachable: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("server", &self.server)
            .field("reachable", &self.is_reachable())
            .finish()
    }
}

impl Cluster {
    /// Prepares the connection (made lazily, so a node starts while Redis is down), probes Redis once, and starts
    /// the heartbeat. Only an unusable URL is an error.
    pub async fn start(config: &config::Cluster) -> Result<Arc<Cluster>, ClusterError> {
        let client = redis::Client::open(config.redis_url.expose()).map_err(ClusterError::Url)?;
        let server = client.get_connection_info().addr().to_string();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // One quick retry; the heartbeat keeps probing after that.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(ClusterError::Url)?;
        let cluster = Arc::new(Cluster {
            node: config.node_name.clone(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            lease_time: config.lease_time,
            server,
            conn,
            // Optimistic until the probe says otherwise, so the first failure is the one logged.
            reachable: AtomicBool::new(true),
        });
        if cluster.beat().await {
            info!(node = %cluster.node, redis = %cluster.server, lease_time_s = cluster.lease_time.as_secs_f64(), "cluster: shared state on Redis");
        }
        tokio::spawn(heartbeat(Arc::downgrade(&cluster)));
        Ok(cluster)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn lease_time(&self) -> Duration {
        self.lease_time
    }

    /// Whether the last call reached Redis.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The failed-login counters and bans of the whole cluster.
    pub fn lockout(self: &Arc<Self>) -> SharedLockout {
        SharedLockout::new(Arc::clone(self))
    }

    /// This node's connections, published for the cluster-wide limits.
    pub fn connections(self: &Arc<Self>) -> SharedConnections {
        SharedConnections::new(Arc::clone(self))
    }

    /// "One writer per name" across the nodes, for one account's filesystem.
    pub fn writer_leases(self: &Arc<Self>, account: &str) -> RedisWriterLeases {
        RedisWriterLeases::new(Arc::clone(self), account)
    }

    /// Leaves the cluster at a clean shutdown: this node's connection counts go at once, not after `lease_time`.
    pub async fn leave(&self) {
        let mut invocation = LEAVE.prepare_invoke();
        invocation
            .key(self.key(&["nodes"]))
            .key(self.key(&["conn", &self.node]))
            .arg(&self.node);
        let _: Option<i64> = self.eval("leave", invocation).await;
    }

    /// `{cosftpd}:a:b:…`.
    fn key(&self, parts: &[&str]) -> String {
        let mut key = PREFIX.to_string();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Runs a script, or says `None` when Redis is unreachable (known already, or found now: then at WARN, once
    /// per outage). `what` names the decision in that line.
    async fn eval<T: FromRedisValue>(
        &self,
        what: &'static str,
        invocation: ScriptInvocation<'static>,
    ) -> Option<T> {
        if !self.is_reachable() {
            return None;
        }
        self.call(what, invocation).await
    }

    /// Like `eval`, also while Redis is thought unreachable: the heartbeat's probe.
    async fn call<T: FromRedisValue>(
        &self,
        what: &'static str,
        invocation: ScriptInvocation<'static>,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        let outcome = tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        match outcome {
            Ok(Ok(value)) => {
                self.mark_reachable();
                Some(value)
            }
            Ok(Err(e)) => {
                self.mark_unreachable(what, &e.to_string());
                None
            }
            Err(_) => {
                self.mark_unreachable(
                    what,
                    &format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
                );
                None
            }
        }
    }

    fn mark_reachable(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            info!(node = %self.node, redis = %self.server, "cluster: Redis answers again; shared lockout, connection limits and writer leases resume");
        }
    }

    fn mark_unreachable(&self, what: &str, error: &str) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            warn!(
                node = %self.node,
                redis = %self.server,
                during = what,
                error,
                "cluster: Redis is unreachable; this node decides alone (its own lockout counters, connection \
                 limits per node, writer leases not shared) until Redis answers again"
            );
        }
    }

    /// Says this node is alive (and probes Redis); true when Redis answered.
    async fn beat(&self) -> bool {
        let mut invocation = HEARTBEAT.prepare_invoke();
        invocation.key(self.key(&["nodes"])).arg(&self.node);
        let answer: Option<i64> = self.call("heartbeat", invocation).await;
        answer.is_some()
    }

    /// A value that names this process's writer: `<node>/<instance>/<n>`; see `leases`.
    fn holder_prefix(&self) -> String {
        format!("{}/", self.node)
    }
}

/// Every third of the lease time: this node is alive, and Redis is probed (an outage ends here).
async fn heartbeat(cluster: Weak<Cluster>) {
    let period = match cluster.upgrade() {
        Some(c) => c.lease_time / 3,
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.beat().await;
    }
}

/// The current time of Redis in milliseconds, as the first lines of every script that needs a clock.
macro_rules! lua_now {
    () => {
        "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    };
}
pub(crate) use lua_now;

/// KEYS: the live nodes. ARGV: this node.
static HEARTBEAT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(concat!(
        lua_now!(),
        "redis.call('ZADD', KEYS[1], now, ARGV[1])\nreturn 1\n"
    ))
});

/// KEYS: the live nodes, this node's connections. ARGV: this node.
static LEAVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new("redis.call('ZREM', KEYS[1], ARGV[1])\nredis.call('DEL', KEYS[2])\nreturn 1\n")
});
