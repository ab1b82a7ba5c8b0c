//! The cluster's shared state on a real Redis, without FTP: two `Cluster` handles in one process stand for two
//! nodes. Needs redis-server (skips without it unless `COSFTPD_REQUIRE_REDIS=1`).

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cosftpd::bucketfs::{Key, LeaseAnswer, WriterLeases};
use cosftpd::cluster::Cluster;
use cosftpd::config::{self, Secret};
use cosftpd::ftp::auth::{Banned, LoginGuard};
use cosftpd::ftp::limits::{ConnectionLimits, LimitError};

use common::services::RedisServer;

const LEASE: Duration = Duration::from_secs(2);

async fn node(redis: &RedisServer, name: &str) -> Arc<Cluster> {
    let settings = config::Cluster {
        redis_url: Secret::new(redis.url()),
        node_name: name.to_string(),
        lease_time: LEASE,
    };
    Cluster::start(&settings).await.expect("cluster")
}

fn guard(cluster: &Arc<Cluster>) -> LoginGuard {
    LoginGuard::new(3, Duration::from_secs(60), Duration::from_secs(60))
        .cluster_wide(cluster.lockout())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Waits (polling, with a deadline) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn password_checks_in_flight_and_bans_count_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let (on_a, on_b) = (guard(&a), guard(&b));
    let client = ip("192.0.2.1");

    // Two checks under way on node a, one failure on node b: a fourth check, on b, must wait…
    let first = on_a.begin(client).await.unwrap();
    let second = on_a.begin(client).await.unwrap();
    assert!(!on_b.begin(client).await.unwrap().failed().await);
    let waiting = on_b.begin(client);
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(600), waiting.as_mut())
            .await
            .is_err(),
        "the slots in flight on the other node count"
    );
    // …and is refused when node a's checks fail: the address is locked out everywhere.
    assert!(!first.failed().await);
    assert!(second.failed().await, "the third failure locks out");
    assert_eq!(waiting.await.unwrap_err(), Banned);
    assert!(on_a.is_banned(client).await);
    assert!(on_b.is_banned(client).await);
    // A session opened before the ban is refused at its next attempt too (the session asks `is_banned`).
    assert_eq!(on_b.begin(client).await.unwrap_err(), Banned);
    // Another address is not concerned.
    let other = ip("192.0.2.2");
    assert!(!on_b.is_banned(other).await);
    on_b.begin(other).await.unwrap().succeeded().await;
}

#[tokio::test]
async fn connection_limits_hold_for_all_nodes_together() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let on_a = ConnectionLimits::cluster_wide(Some(3), Some(2), a.connections());
    let on_b = ConnectionLimits::cluster_wide(Some(3), Some(2), b.connections());
    let (x, y) = (ip("192.0.2.1"), ip("192.0.2.2"));

    let x1 = on_a.try_admit(x).await.unwrap();
    let _x2 = on_b.try_admit(x).await.unwrap();
    assert_eq!(on_a.try_admit(x).await.unwrap_err(), LimitError::PerIp);
    assert_eq!(on_b.try_admit(x).await.unwrap_err(), LimitError::PerIp);
    let _y1 = on_b.try_admit(y).await.unwrap();
    assert_eq!(on_a.try_admit(y).await.unwrap_err(), LimitError::Total);
    // A connection ends on node a: its place is free for node b once published.
    drop(x1);
    eventually("the freed place is seen by the other node", async || {
        on_b.try_admit(x).await.map(drop).is_ok()
    })
    .await;

    // A node that vanished without a word (its counts written as a node writes them, then never renewed): they
    // count until they lapse, lease_time after the node's last word.
    let time = redis.command(&["TIME"]);
    let seconds: u64 = time.lines().next().unwrap().parse().unwrap();
    let now_ms = (seconds * 1000).to_string();
    redis.command(&["ZADD", "{cosftpd}:nodes", &now_ms, "c"]);
    redis.command(&["HSET", "{cosftpd}:conn:c", "192.0.2.3", "1", "total", "1"]);
    redis.command(&["PEXPIRE", "{cosftpd}:conn:c", "2000"]);
    let z = ip("192.0.2.3");
    let d = node(&redis, "d").await;
    let on_d = ConnectionLimits::cluster_wide(None, Some(1), d.connections());
    assert_eq!(on_d.try_admit(z).await.unwrap_err(), LimitError::PerIp);
    eventually("a vanished node's counts lapse", async || {
        on_d.try_admit(z).await.map(drop).is_ok()
    })
    .await;
}

#[tokio::test]
async fn writer_leases_refuse_release_and_lapse() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let (on_a, on_b) = (a.writer_leases("user"), b.writer_leases("user"));
    let key = Key::root().join("f.txt").unwrap();

    let LeaseAnswer::Granted(token) = on_a.acquire(&key).await else {
        panic!("a takes the free name");
    };
    assert_eq!(
        on_b.acquire(&key).await,
        LeaseAnswer::HeldElsewhere("a".into())
    );
    // Another account's name of the same spelling is another lease.
    let other_account = b.writer_leases("someone-else");
    assert!(matches!(
        other_account.acquire(&key).await,
        LeaseAnswer::Granted(_)
    ));
    // Renewed past its first lease time, the lease still holds.
    tokio::time::sleep(LEASE / 2).await;
    on_a.renew(&key, &token).await;
    tokio::time::sleep(LEASE * 3 / 4).await;
    assert!(matches!(
        on_b.acquire(&key).await,
        LeaseAnswer::HeldElsewhere(_)
    ));
    on_a.release(&key, &token).await;
    let LeaseAnswer::Granted(_) = on_b.acquire(&key).await else {
        panic!("released: b may write");
    };
    // Node b dies holding it: the lease lapses, a takes it.
    drop(on_b);
    drop(b);
    assert!(matches!(
        on_a.acquire(&key).await,
        LeaseAnswer::HeldElsewhere(_)
    ));
    eventually("a dead node's lease lapses", async || {
        matches!(on_a.acquire(&key).await, LeaseAnswer::Granted(_))
    })
    .await;
}

#[tokio::test]
async fn without_redis_each_node_decides_alone() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = node(&redis, "a").await;
    let on_a = guard(&a);
    let limits = ConnectionLimits::cluster_wide(None, Some(1), a.connections());
    let leases = a.writer_leases("user");
    redis.stop();

    // Logins are checked and counted here; the lockout still works, per node.
    let client = ip("192.0.2.1");
    for n in 1..=3 {
        let locked = on_a.begin(client).await.unwrap().failed().await;
        assert_eq!(locked, n == 3);
    }
    assert!(!a.is_reachable());
    assert!(on_a.is_banned(client).await);
    // The limits hold per node.
    let _one = limits.try_admit(client).await.unwrap();
    assert_eq!(
        limits.try_admit(client).await.unwrap_err(),
        LimitError::PerIp
    );
    // Writers are not stopped.
    let key = Key::root().join("g.txt").unwrap();
    assert!(matches!(
        leases.acquire(&key).await,
        LeaseAnswer::Granted(_)
    ));

    // Redis is back: the heartbeat notices, and shared decisions resume (the ban of the outage is kept here).
    redis.restart();
    eventually("Redis is reachable again", async || a.is_reachable()).await;
    assert!(on_a.is_banned(client).await);
    let fresh = ip("192.0.2.9");
    on_a.begin(fresh).await.unwrap().succeeded().await;
    assert_eq!(
        redis.command(&["EXISTS", "{cosftpd}:login:192.0.2.9"]),
        ":1"
    );
}
