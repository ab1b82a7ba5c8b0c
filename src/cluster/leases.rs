//! Writer leases on Redis: `{cosftpd}:lease:<account>:<key>` holds `<node>/<instance>/<n>` of its writer and
//! expires after `lease_time` unless renewed (every third of it). A lease of the same node, from any incarnation,
//! may be taken over: this node's own writer table has decided among its writers already, and a lease left by an
//! earlier incarnation of the node (before a crash and restart) is stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::Script;
use tracing::{debug, warn};

use super::Cluster;
use crate::bucketfs::{Key, LeaseAnswer, LeaseToken, WriterLeases};

/// One account's leases.
#[derive(Debug)]
pub struct RedisWriterLeases {
    cluster: Arc<Cluster>,
    account: String,
    next: AtomicU64,
}

impl RedisWriterLeases {
    pub(super) fn new(cluster: Arc<Cluster>, account: &str) -> Self {
        Self {
            cluster,
            account: account.to_string(),
            next: AtomicU64::new(0),
        }
    }

    fn redis_key(&self, key: &Key) -> String {
        self.cluster.key(&["lease", &self.account, key.as_str()])
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.cluster.lease_time.as_millis()).unwrap_or(u64::MAX)
    }

    async fn acquire_inner(&self, key: &Key) -> LeaseAnswer {
        let token = LeaseToken(format!(
            "{}{}/{}",
            self.cluster.holder_prefix(),
            self.cluster.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(&token.0)
            .arg(self.cluster.holder_prefix())
            .arg(self.ttl_ms());
        match self
            .cluster
            .eval::<String>("writer lease", invocation)
            .await
        {
            Some(answer) if answer == "ok" => LeaseAnswer::Granted(token),
            Some(holder) => {
                let node = holder.split('/').next().unwrap_or_default().to_string();
                LeaseAnswer::HeldElsewhere(node)
            }
            None => {
                debug!(path = %key.display(), "Redis unreachable: writer lease granted by this node alone");
                LeaseAnswer::Granted(token)
            }
        }
    }

    async fn renew_inner(&self, key: &Key, token: &LeaseToken) {
        let mut invocation = RENEW.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(&token.0)
            .arg(self.ttl_ms());
        match self
            .cluster
            .eval::<String>("writer lease renewal", invocation)
            .await
        {
            Some(answer) if answer == "ok" => {}
            Some(holder) => warn!(
                path = %key.display(),
                holder,
                "the writer lease of this file is held elsewhere now (lost while Redis was away, or the file was \
                 renamed while being written): two nodes may write it, the last to finish wins"
            ),
            None => {}
        }
    }

    async fn release_inner(&self, key: &Key, token: &LeaseToken) {
        let mut invocation = RELEASE.prepare_invoke();
        invocation.key(self.redis_key(key)).arg(&token.0);
        let _: Option<i64> = self.cluster.eval("writer lease release", invocation).await;
    }
}

impl WriterLeases for RedisWriterLeases {
    fn acquire<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, LeaseAnswer> {
        self.acquire_inner(key).boxed()
    }

    fn renew<'a>(&'a self, key: &'a Key, token: &'a LeaseToken) -> BoxFuture<'a, ()> {
        self.renew_inner(key, token).boxed()
    }

    fn release<'a>(&'a self, key: &'a Key, token: &'a LeaseToken) -> BoxFuture<'a, ()> {
        self.release_inner(key, token).boxed()
    }

    fn renew_every(&self) -> Duration {
        self.cluster.lease_time / 3
    }
}

/// KEYS: the lease. ARGV: holder, this node's prefix, lease (ms). 'ok', or the holder.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] or string.sub(holder, 1, #ARGV[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[3]))
  return 'ok'
end
return holder
",
    )
});

/// KEYS: the lease. ARGV: holder, lease (ms). 'ok' (renewed, or taken again after it lapsed), or the holder now.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 'ok'
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 'ok'
end
return holder
",
    )
});

/// KEYS: the lease. ARGV: holder. Deleted only while it is still this holder's.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});
