//! A path typed in a directory (FTP's CWD then any command): the key is normalised and under the root, and
//! resolving it again as an absolute path gives it back.
#![no_main]

use cosftpd::bucketfs::Key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (cwd, arg) = input;
    let Ok(dir) = Key::parse(cwd) else {
        return;
    };
    if let Ok(key) = dir.resolve(arg) {
        let text = key.as_str();
        assert!(!text.starts_with('/') && !text.ends_with('/'));
        assert!(key.is_root() || text.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
        assert_eq!(Key::parse(&format!("/{text}")).ok(), Some(key));
    }
});
