//! Object metadata on a directory store: extended attributes of the file (or directory), `user.cosftpd.meta.<name>`
//! for each user metadata entry and `user.cosftpd.content_type`. Where the filesystem has no user extended
//! attributes (ENOTSUP: some network and FUSE filesystems, tmpfs before Linux 6.6) the metadata is silently not
//! kept: writes succeed and HEADs show none. The `mtime` entry is kept in the file's own mtime as well.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;

use xattr::FileExt;

use crate::storage::objects::ObjectMeta;

const META_PREFIX: &str = "user.cosftpd.meta.";
const CONTENT_TYPE: &str = "user.cosftpd.content_type";
/// Every attribute this module owns starts with this.
const OURS: &str = "user.cosftpd.";

/// The filesystem keeps no user extended attributes here.
pub(super) fn is_unsupported(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported || err.raw_os_error() == Some(libc::ENOTSUP)
}

/// Stores `meta` on a file that has none of ours yet.
pub(super) fn write(file: &File, meta: &ObjectMeta) -> io::Result<()> {
    let result = (|| {
        if let Some(content_type) = &meta.content_type {
            file.set_xattr(CONTENT_TYPE, content_type.as_bytes())?;
        }
        for (name, value) in &meta.user {
            file.set_xattr(format!("{META_PREFIX}{name}"), value.as_bytes())?;
        }
        Ok(())
    })();
    match result {
        Err(e) if is_unsupported(&e) => Ok(()),
        other => other,
    }
}

/// Replaces all of our attributes with `meta` (others' attributes stay).
pub(super) fn replace(file: &File, meta: &ObjectMeta) -> io::Result<()> {
    let names = match file.list_xattr() {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        if name.to_string_lossy().starts_with(OURS) {
            match file.remove_xattr(&name) {
                Ok(()) => {}
                // Gone meanwhile: what we want.
                Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
                Err(e) => return Err(e),
            }
        }
    }
    write(file, meta)
}

/// The metadata stored on `file` (none where the filesystem keeps no attributes).
pub(super) fn read(file: &File) -> io::Result<ObjectMeta> {
    let names = match file.list_xattr() {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(ObjectMeta::default()),
        Err(e) => return Err(e),
    };
    let mut meta = ObjectMeta {
        content_type: None,
        user: BTreeMap::new(),
    };
    for name in names {
        let Some(name) = name.to_str() else { continue };
        let value = match file.get_xattr(name) {
            Ok(Some(v)) => String::from_utf8_lossy(&v).into_owned(),
            Ok(None) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        if name == CONTENT_TYPE {
            meta.content_type = Some(value);
        } else if let Some(user) = name.strip_prefix(META_PREFIX) {
            meta.user.insert(user.to_string(), value);
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enotsup_means_unsupported() {
        assert!(is_unsupported(&io::Error::from_raw_os_error(libc::ENOTSUP)));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(libc::ENOSPC)));
    }

    #[test]
    fn round_trip_and_replace_keep_foreign_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        if let Err(e) = file.set_xattr("user.other", b"x") {
            assert!(is_unsupported(&e), "{e}");
            eprintln!("skipping: no user xattrs on {}", dir.path().display());
            return;
        }
        let meta = ObjectMeta {
            content_type: Some("text/plain".into()),
            user: [
                ("mtime".to_string(), "1700000000".to_string()),
                ("mode".into(), "33188".into()),
            ]
            .into_iter()
            .collect(),
        };
        write(&file, &meta).unwrap();
        assert_eq!(read(&file).unwrap(), meta);
        let fewer = ObjectMeta {
            content_type: None,
            user: [("uid".to_string(), "0".to_string())].into_iter().collect(),
        };
        replace(&file, &fewer).unwrap();
        assert_eq!(read(&file).unwrap(), fewer);
        assert_eq!(
            file.get_xattr("user.other").unwrap().as_deref(),
            Some(&b"x"[..])
        );
    }
}
