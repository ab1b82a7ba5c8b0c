//! Logins: plaintext or hashed passwords compared in constant time, a failed-login delay that makes unknown users
//! and wrong passwords look alike, and a per-IP lockout after repeated failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::cluster::lockout::{Begin, Rules};
use crate::cluster::SharedLockout;
use crate::config::Secret;

/// How often a login waiting for a slot looks again when the slots are shared: a slot given back on another node
/// wakes nobody here.
const SHARED_SLOT_POLL: Duration = Duration::from_millis(200);

/// Every failed login is answered this long after the PASS arrived (unless verification took longer), so timing
/// does not tell an unknown user from a wrong password, and guessing is slow.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// How a configured password is stored, told by its prefix (the crypt(3) / PHC convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordScheme {
    /// As in the original: the password itself.
    Plaintext,
    /// `$argon2id$…` (also argon2i, argon2d).
    Argon2,
    /// `$2a$`, `$2b$`, `$2y$`.
    Bcrypt,
    /// `$5$` (SHA-256-crypt), `$6$` (SHA-512-crypt).
    ShaCrypt,
    /// `$1$`: broken, refused when the config is read (`config::values::password`); never matches.
    Md5Crypt,
}

impl PasswordScheme {
    pub fn of(stored: &str) -> Self {
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| stored.starts_with(p));
        if stored.starts_with("$argon2") {
            Self::Argon2
        } else if starts(&["$2a$", "$2b$", "$2y$"]) {
            Self::Bcrypt
        } else if starts(&["$5$", "$6$"]) {
            Self::ShaCrypt
        } else if stored.starts_with("$1$") {
            Self::Md5Crypt
        } else {
            Self::Plaintext
        }
    }
}

/// Whether `given` matches the configured password (see [`PasswordScheme`]). A hash is slow by design (argon2 and
/// bcrypt at their usual costs take tens to hundreds of milliseconds): async callers use
/// [`verify_password_off_runtime`].
pub fn verify_password(stored: &Secret, given: &str) -> bool {
    let stored = stored.expose();
    match PasswordScheme::of(stored) {
        PasswordScheme::Plaintext => stored.as_bytes().ct_eq(given.as_bytes()).into(),
        PasswordScheme::Argon2 => {
            use argon2::PasswordVerifier;
            argon2::Argon2::default()
                .verify_password(given.as_bytes(), stored)
                .is_ok()
        }
        PasswordScheme::Bcrypt => bcrypt::verify(given, stored).unwrap_or(false),
        PasswordScheme::ShaCrypt => {
            use sha_crypt::PasswordVerifier;
            sha_crypt::ShaCrypt::default()
                .verify_password(given.as_bytes(), stored)
                .is_ok()
        }
        PasswordScheme::Md5Crypt => false,
    }
}

/// [`verify_password`] on tokio's blocking pool when the password is hashed, so a login does not stall the other
/// sessions on the same worker thread.
pub async fn verify_password_off_runtime(stored: &Secret, given: &str) -> bool {
    if PasswordScheme::of(stored.expose()) == PasswordScheme::Plaintext {
        return verify_password(stored, given);
    }
    let (stored, given) = (stored.clone(), given.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&stored, &given))
        .await
        .unwrap_or(false)
}

/// A hash for `ftp_login_user_password` (what `cosftpd passwd` prints): argon2id, PHC string format, with a
/// random salt from the OS.
///
/// The argon2 crate's default parameters (19 MiB, 2 passes, 1 lane) are the OWASP Password Storage Cheat Sheet's
/// argon2id recommendation. RFC 9106's 64 MiB profile would be stronger per guess, but every login verifies a hash
/// and that memory is multiplied by the logins in flight; the per-IP lockout limits guessing over FTP anyway.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::PasswordHasher;
    // `hash_password` draws the salt from the OS (the crate's `getrandom` feature).
    let hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::default(),
    )
    .hash_password(password.as_bytes())
    .map_err(HashError)?;
    Ok(hash.to_string())
}

/// The argon2 crate's error (it implements `std::error::Error` only with its `std` feature, so it is shown, not
/// chained as a source).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(argon2::password_hash::Error);

/// Whether a configured password is a hash (for `check-config` and the warning about plaintext).
pub fn is_hashed(stored: &Secret) -> bool {
    PasswordScheme::of(stored.expose()) != PasswordScheme::Plaintext
}

/// Failed logins per client IP; an IP over the limit within the window is refused for the ban time.
///
/// Every password check holds a slot of its address (`begin`), and at most `limit - failures` checks of one address
/// run at once: the guesses in flight can never take an address past the limit, however many connections it has
/// opened beforehand. A login waiting for a slot is let go when one ends, refused if the address got locked out.
///
/// In a cluster the counters, bans and slots are the cluster's (`cluster::lockout`, the same rules); while Redis is
/// unreachable, this node's own table counts, and an address banned by either is refused.
#[derive(Debug)]
pub struct LoginGuard {
    /// `login_fail_limit`, `login_fail_window`, `login_ban_time` (milliseconds): atomics, so that a reload can
    /// change them under the sessions that share the table.
    limit: AtomicU32,
    window_ms: AtomicU64,
    ban_ms: AtomicU64,
    state: Mutex<HashMap<IpAddr, Failures>>,
    /// Wakes the logins waiting for a slot whenever one is given back.
    released: Notify,
    shared: Option<SharedLockout>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    banned_until: Option<Instant>,
    /// Password checks of this address under way.
    in_flight: u32,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Self {
            count: 0,
            first: now,
            banned_until: None,
            in_flight: 0,
        }
    }

    fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }
}

/// The address is locked out after too many failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins from this address")]
pub struct Banned;

/// One password check under way for an address. Say how it ended with `succeeded` or `failed`; dropped without
/// either, it gives its slot back without counting.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    guard: &'a LoginGuard,
    ip: IpAddr,
    ended: bool,
    /// The cluster's slot, when the cluster gave it (else this node's table did).
    slot: Option<String>,
}

impl LoginGuard {
    /// `limit = 0` disables the lockout.
    pub fn new(limit: u32, window: Duration, ban: Duration) -> Self {
        let guard = Self {
            limit: AtomicU32::new(0),
            window_ms: AtomicU64::new(0),
            ban_ms: AtomicU64::new(0),
            state: Mutex::new(HashMap::new()),
            released: Notify::new(),
            shared: None,
        };
        guard.set_rules(limit, window, ban);
        guard
    }

    /// The same rules for the whole cluster.
    pub fn cluster_wide(mut self, shared: SharedLockout) -> Self {
        self.shared = Some(shared);
        self
    }

    /// New rules for the next checks (a reload); failures counted and bans given so far stay.
    pub fn set_rules(&self, limit: u32, window: Duration, ban: Duration) {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.limit.store(limit, Ordering::Relaxed);
        self.window_ms.store(millis(window), Ordering::Relaxed);
        self.ban_ms.store(millis(ban), Ordering::Relaxed);
        self.released.notify_waiters();
    }

    fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms.load(Ordering::Relaxed))
    }

    fn ban(&self) -> Duration {
        Duration::from_millis(self.ban_ms.load(Ordering::Relaxed))
    }

    fn rules(&self) -> Rules {
        Rules {
            limit: self.limit(),
            window: self.window(),
            ban: self.ban(),
        }
    }

    /// The cluster, unless the lockout is off.
    fn shared(&self) -> Option<&SharedLockout> {
        self.shared.as_ref().filter(|_| self.limit() > 0)
    }

    /// Whether the IP is locked out now (by the cluster, or by this node while Redis was away).
    pub async fn is_banned(&self, ip: IpAddr) -> bool {
        if self.is_banned_here(ip) {
            return true;
        }
        match self.shared() {
            Some(shared) => shared.is_banned(ip).await.unwrap_or(false),
            None => false,
        }
    }

    fn is_banned_here(&self, ip: IpAddr) -> bool {
        let Ok(state) = self.state.lock() else {
            return false;
        };
        state.get(&ip).is_some_and(|f| f.is_banned(Instant::now()))
    }

    /// Waits for a slot to check a password from `ip` (see the type's documentation); `Banned` when the address is
    /// locked out, now or once the checks ahead of this one have failed.
    pub async fn begin(&self, ip: IpAddr) -> Result<LoginAttempt<'_>, Banned> {
        loop {
            // Registered before looking, so a slot given back in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(shared) = self.shared() {
                if self.is_banned_here(ip) {
                    return Err(Banned);
                }
                match shared.try_begin(ip, self.rules()).await {
                    Some(Begin::Granted(slot)) => return Ok(self.attempt(ip, Some(slot))),
                    Some(Begin::Banned) => return Err(Banned),
                    Some(Begin::Wait) => {
                        tokio::select! {
                            _ = released => {}
                            _ = tokio::time::sleep(SHARED_SLOT_POLL) => {}
                        }
                        continue;
                    }
                    // Redis is away: this node's table decides.
                    None => {}
                }
            }
            if self.try_begin(ip)? {
                return Ok(self.attempt(ip, None));
            }
            released.await;
        }
    }

    fn attempt(&self, ip: IpAddr, slot: Option<String>) -> LoginAttempt<'_> {
        LoginAttempt {
            guard: self,
            ip,
            ended: false,
            slot,
        }
    }

    /// Takes a slot when one is free (true), or says to wait (false).
    fn try_begin(&self, ip: IpAddr) -> Result<bool, Banned> {
        let limit = self.limit();
        if limit == 0 {
            return Ok(true);
        }
        // A poisoned table: refuse rather than let guesses through uncounted.
        let mut state = self.state.lock().map_err(|_| Banned)?;
        let now = Instant::now();
        // Forget stale entries so a scan from many addresses cannot grow the table without bound.
        if state.len() > 10_000 {
            let horizon = self.window().max(self.ban());
            state.retain(|_, f| f.in_flight > 0 || now.duration_since(f.first) < horizon);
        }
        let entry = state.entry(ip).or_insert(Failures::new(now));
        if entry.is_banned(now) {
            return Err(Banned);
        }
        if entry.banned_until.is_some() || now.duration_since(entry.first) > self.window() {
            // The ban or the window is over: start counting afresh.
            *entry = Failures {
                in_flight: entry.in_flight,
                ..Failures::new(now)
            };
        }
        if entry.count + entry.in_flight >= limit {
            return Ok(false);
        }
        entry.in_flight += 1;
        Ok(true)
    }

    /// Gives a slot back, counting a success or a failure if the check ended with one; true when that failure
    /// locked the address out.
    async fn end(&self, ip: IpAddr, slot: Option<String>, result: Option<bool>) -> bool {
        let locked = match (slot, self.shared()) {
            (Some(slot), Some(shared)) => match shared.end(ip, &slot, result, self.rules()).await {
                Some(locked) => locked,
                // Redis did not hear it: counted here (the cluster's slot lapses by itself).
                None => self.end_here(ip, result, false),
            },
            _ => self.end_here(ip, result, true),
        };
        self.released.notify_waiters();
        locked
    }

    /// `end` in this node's table; `held_slot`: the check had a slot of this table to give back.
    fn end_here(&self, ip: IpAddr, result: Option<bool>, held_slot: bool) -> bool {
        let limit = self.limit();
        if limit == 0 {
            return false;
        }
        match self.state.lock() {
            Ok(mut state) => {
                let now = Instant::now();
                let entry = state.entry(ip).or_insert(Failures::new(now));
                if held_slot {
                    entry.in_flight = entry.in_flight.saturating_sub(1);
                }
                if result == Some(false) {
                    entry.count += 1;
                    if entry.count >= limit {
                        entry.banned_until = Some(now + self.ban());
                        entry.count = 0;
                        entry.first = now;
                    }
                    entry.count == 0
                } else {
                    if result == Some(true) {
                        // A success forgets the failures (the address is someone who knows a password).
                        entry.count = 0;
                        entry.first = now;
                    }
                    false
                }
            }
            Err(_) => false,
        }
    }
}

impl LoginAttempt<'_> {
    pub async fn succeeded(mut self) {
        self.ended = true;
        self.guard.end(self.ip, self.slot.take(), Some(true)).await;
    }

    /// Counts the failure (before any delay, so that the checks waiting for a slot see it); true when it locked
    /// the address out.
    pub async fn failed(mut self) -> bool {
        self.ended = true;
        self.guard.end(self.ip, self.slot.take(), Some(false)).await
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        match (self.slot.take(), self.guard.shared()) {
            (Some(slot), Some(shared)) => {
                let (shared, ip, rules) = (shared.clone(), self.ip, self.guard.rules());
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { shared.end(ip, &slot, None, rules).await });
                }
            }
            _ => {
                self.guard.end_here(self.ip, None, true);
                self.guard.released.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by OpenSSL and glibc's crypt(3) (they agree), password `secret`, salt `saltsalt`.
    const SHA512_CRYPT: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    const SHA256_CRYPT: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    const SHA512_CRYPT_ROUNDS: &str = "$6$rounds=10000$saltsalt$WowrPBpEDVlCoruBosYlrZycTCx3//TyDHYqEhX9DUHHt0XTztUqzQDDUuvUGRA8aUe9p55hcAxeGcu58sm3u.";
    // `openssl passwd -1 -salt saltsalt secret`
    const MD5_CRYPT: &str = "$1$saltsalt$9xy1btjgzLYfb7hivXtC//";
    // crypt_blowfish's test vector for the password `U*U` (libxcrypt's crypt(3) gives the same).
    const BCRYPT_U_STAR_U: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    #[test]
    fn plaintext() {
        assert!(verify_password(&Secret::new("pass0"), "pass0"));
        assert!(!verify_password(&Secret::new("pass0"), "pass1"));
        assert!(!verify_password(&Secret::new("pass0"), "pass00"));
        assert!(!verify_password(&Secret::new(""), "x"));
        assert!(!is_hashed(&Secret::new("plain")));
    }

    /// Hashes made by other tools (so a bug shared by our hasher and verifier cannot hide): the salts are fixed,
    /// the password is `secret` unless said otherwise.
    #[test]
    fn crypt_hashes_from_other_tools() {
        let cases = [
            // `openssl passwd -6 -salt saltsalt secret`
            SHA512_CRYPT,
            // `openssl passwd -5 -salt saltsalt secret`
            SHA256_CRYPT,
            // An explicit round count: `openssl passwd -6 -salt 'rounds=10000$saltsalt' secret`
            SHA512_CRYPT_ROUNDS,
        ];
        for hash in cases {
            let stored = Secret::new(hash);
            assert_eq!(PasswordScheme::of(hash), PasswordScheme::ShaCrypt, "{hash}");
            assert!(is_hashed(&stored));
            assert!(verify_password(&stored, "secret"), "{hash}");
            assert!(!verify_password(&stored, "secreT"), "{hash}");
            assert!(!verify_password(&stored, ""), "{hash}");
        }
        // OpenBSD's / crypt_blowfish's own test vector (password `U*U`), in the three spellings of the prefix.
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = BCRYPT_U_STAR_U.replacen("$2a$", prefix, 1);
            let stored = Secret::new(hash.as_str());
            assert_eq!(PasswordScheme::of(&hash), PasswordScheme::Bcrypt);
            assert!(verify_password(&stored, "U*U"), "{hash}");
            assert!(!verify_password(&stored, "U*V"), "{hash}");
        }
    }

    #[test]
    fn argon2_round_trip() {
        use argon2::PasswordHasher;
        let argon = argon2::Argon2::default()
            .hash_password_with_salt(b"secret", b"a fixed salt 16B")
            .unwrap()
            .to_string();
        assert!(argon.starts_with("$argon2id$"));
        assert!(verify_password(&Secret::new(argon.as_str()), "secret"));
        assert!(!verify_password(&Secret::new(argon.as_str()), "wrong"));
        assert!(is_hashed(&Secret::new(argon)));
    }

    #[test]
    fn malformed_and_refused_hashes_never_match() {
        // Not even their own text, which a fall-back to plaintext comparison would accept.
        for hash in [
            "$argon2id$garbage",
            "$2b$garbage",
            "$6$garbage",
            "$5$",
            MD5_CRYPT,
        ] {
            assert!(!verify_password(&Secret::new(hash), hash), "{hash}");
            assert!(is_hashed(&Secret::new(hash)), "{hash}");
        }
        assert_eq!(PasswordScheme::of(MD5_CRYPT), PasswordScheme::Md5Crypt);
        assert!(!verify_password(&Secret::new(MD5_CRYPT), "secret"));
    }

    #[tokio::test]
    async fn verification_off_the_runtime_agrees() {
        for (stored, given, expected) in [
            ("pass0", "pass0", true),
            ("pass0", "pass1", false),
            (SHA512_CRYPT, "secret", true),
            (SHA512_CRYPT, "wrong", false),
        ] {
            assert_eq!(
                verify_password_off_runtime(&Secret::new(stored), given).await,
                expected,
                "{stored} / {given}"
            );
        }
    }

    #[test]
    fn hash_password_makes_salted_argon2id_that_verifies() {
        let first = hash_password("correct horse").unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert!(verify_password(
            &Secret::new(first.clone()),
            "correct horse"
        ));
        assert!(!verify_password(
            &Secret::new(first.clone()),
            "correct horse "
        ));
        assert!(is_hashed(&Secret::new(first.clone())));
        // A fresh salt each time: the same password never gives the same hash.
        assert_ne!(first, hash_password("correct horse").unwrap());
    }

    async fn fail(guard: &LoginGuard, ip: IpAddr) -> bool {
        let attempt = guard.try_begin(ip).map(|free| {
            assert!(free, "a slot is free");
            guard.attempt(ip, None)
        });
        attempt.expect("not banned").failed().await
    }

    #[tokio::test]
    async fn lockout_after_limit_and_only_for_that_ip() {
        let guard = LoginGuard::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!fail(&guard, a).await);
        assert!(!fail(&guard, a).await);
        assert!(!guard.is_banned(a).await);
        assert!(fail(&guard, a).await);
        assert!(guard.is_banned(a).await);
        assert_eq!(guard.try_begin(a), Err(Banned));
        assert!(!guard.is_banned(b).await);
        assert_eq!(guard.try_begin(b), Ok(true));
    }

    #[tokio::test]
    async fn checks_in_flight_count_against_the_limit() {
        let guard = LoginGuard::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = guard.begin(a).await.unwrap();
        let second = guard.begin(a).await.unwrap();
        assert!(!fail(&guard, a).await);
        // One failure and two checks under way: a fourth check waits for one of them.
        assert_eq!(guard.try_begin(a), Ok(false));
        let waiting = guard.begin(a);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        assert!(!first.failed().await);
        assert!(second.failed().await, "the limit is reached");
        assert_eq!(waiting.await.unwrap_err(), Banned);
    }

    #[tokio::test]
    async fn new_rules_apply_to_the_next_checks_and_keep_the_failures() {
        let guard = LoginGuard::new(5, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!fail(&guard, a).await);
        assert!(!fail(&guard, a).await);
        // A reload lowers the limit: the two failures count, the third locks the address out.
        guard.set_rules(3, Duration::from_secs(60), Duration::from_secs(60));
        assert!(fail(&guard, a).await);
        assert!(guard.is_banned(a).await);
    }

    #[tokio::test]
    async fn success_resets_and_zero_disables() {
        let guard = LoginGuard::new(2, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "::1".parse().unwrap();
        assert!(!fail(&guard, a).await);
        guard.begin(a).await.unwrap().succeeded().await;
        assert!(!fail(&guard, a).await);
        // A check that ends without a result (the session went away) gives its slot back uncounted.
        drop(guard.begin(a).await.unwrap());
        assert!(fail(&guard, a).await);
        let off = LoginGuard::new(0, Duration::from_secs(60), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(!off.begin(a).await.unwrap().failed().await);
        }
        assert!(!off.is_banned(a).await);
    }
}
