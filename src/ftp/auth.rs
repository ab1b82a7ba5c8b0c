//! Logins: plaintext or hashed passwords compared in constant time, a failed-login delay that makes unknown users
//! and wrong passwords look alike, and a per-IP lockout after repeated failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::config::Secret;

/// Every failed login is answered this long after the PASS arrived (unless verification took longer), so timing
/// does not tell an unknown user from a wrong password, and guessing is slow.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// Whether `given` matches the configured password, which is plaintext (as in the original) or a crypt-style hash:
/// `$argon2id$…` (also argon2i/argon2d), `$2a$/$2b$/$2y$` (bcrypt), `$5$`/`$6$` (SHA-crypt), `$1$` (MD5-crypt).
pub fn verify_password(stored: &Secret, given: &str) -> bool {
    let stored = stored.expose();
    if stored.starts_with("$argon2") {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        return PasswordHash::new(stored)
            .map(|hash| {
                argon2::Argon2::default()
                    .verify_password(given.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
    }
    if is_crypt_hash(stored) {
        return pwhash::unix::verify(given, stored);
    }
    stored.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A hash for `ftp_login_user_password` (what `cosftpd passwd` prints): argon2id, PHC string format, with a
/// random salt from the OS.
///
/// The argon2 crate's default parameters (19 MiB, 2 passes, 1 lane) are the OWASP Password Storage Cheat Sheet's
/// argon2id recommendation. RFC 9106's 64 MiB profile would be stronger per guess, but every login verifies a hash
/// and that memory is multiplied by the logins in flight; the per-IP lockout limits guessing over FTP anyway.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::default(),
    )
    .hash_password(password.as_bytes(), &salt)
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
    let s = stored.expose();
    s.starts_with("$argon2") || is_crypt_hash(s)
}

fn is_crypt_hash(s: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$5$", "$6$", "$1$"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Failed logins per client IP; an IP over the limit within the window is refused for the ban time.
#[derive(Debug)]
pub struct LoginGuard {
    limit: u32,
    window: Duration,
    ban: Duration,
    state: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    banned_until: Option<Instant>,
}

impl LoginGuard {
    /// `limit = 0` disables the lockout.
    pub fn new(limit: u32, window: Duration, ban: Duration) -> Self {
        Self {
            limit,
            window,
            ban,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the IP is locked out now.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        let Ok(state) = self.state.lock() else {
            return false;
        };
        state
            .get(&ip)
            .and_then(|f| f.banned_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Records a failed login; true when this failure locked the IP out.
    pub fn record_failure(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        // Forget stale entries so a scan from many addresses cannot grow the table without bound.
        if state.len() > 10_000 {
            let horizon = self.window.max(self.ban);
            state.retain(|_, f| now.duration_since(f.first) < horizon);
        }
        let entry = state.entry(ip).or_insert(Failures {
            count: 0,
            first: now,
            banned_until: None,
        });
        if now.duration_since(entry.first) > self.window {
            *entry = Failures {
                count: 0,
                first: now,
                banned_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= self.limit {
            entry.banned_until = Some(now + self.ban);
            entry.count = 0;
            entry.first = now;
            return true;
        }
        false
    }

    pub fn record_success(&self, ip: IpAddr) {
        if let Ok(mut state) = self.state.lock() {
            state.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_and_hashes() {
        assert!(verify_password(&Secret::new("pass0"), "pass0"));
        assert!(!verify_password(&Secret::new("pass0"), "pass1"));
        assert!(!verify_password(&Secret::new("pass0"), "pass00"));
        assert!(!verify_password(&Secret::new(""), "x"));

        let bcrypt = pwhash::bcrypt::hash("secret").unwrap();
        assert!(verify_password(&Secret::new(bcrypt.clone()), "secret"));
        assert!(!verify_password(&Secret::new(bcrypt), "wrong"));

        let sha512 = pwhash::sha512_crypt::hash("secret").unwrap();
        assert!(sha512.starts_with("$6$"));
        assert!(verify_password(&Secret::new(sha512.clone()), "secret"));
        assert!(!verify_password(&Secret::new(sha512), "wrong"));

        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        let argon = argon2::Argon2::default()
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        assert!(argon.starts_with("$argon2id$"));
        assert!(verify_password(&Secret::new(argon.clone()), "secret"));
        assert!(!verify_password(&Secret::new(argon.clone()), "wrong"));
        assert!(is_hashed(&Secret::new(argon)));
        assert!(!is_hashed(&Secret::new("plain")));
        // A malformed hash never matches, not even its own text.
        assert!(!verify_password(
            &Secret::new("$argon2id$garbage"),
            "$argon2id$garbage"
        ));
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

    #[test]
    fn lockout_after_limit_and_only_for_that_ip() {
        let guard = LoginGuard::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!guard.record_failure(a));
        assert!(!guard.record_failure(a));
        assert!(!guard.is_banned(a));
        assert!(guard.record_failure(a));
        assert!(guard.is_banned(a));
        assert!(!guard.is_banned(b));
        guard.record_success(b);
        assert!(guard.is_banned(a));
    }

    #[test]
    fn success_resets_and_zero_disables() {
        let guard = LoginGuard::new(2, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "::1".parse().unwrap();
        guard.record_failure(a);
        guard.record_success(a);
        assert!(!guard.record_failure(a));
        let off = LoginGuard::new(0, Duration::from_secs(60), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(!off.record_failure(a));
        }
        assert!(!off.is_banned(a));
    }
}
