//! What `/proc/self/mountinfo` says is mounted at a path: the kernel's own account, which stays readable when
//! the mount itself is not (a FUSE mount whose daemon died answers every access with ENOTCONN).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One mount, as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// `fuse.cosftpd`, `tmpfs`, `ext4`, …: for FUSE, `fuse.<subtype>` (or plain `fuse` without one).
    pub fs_type: String,
    /// The mount's source (`cosftpd:bucket`, a device, …), as `mount` shows it.
    pub source: String,
    /// `major:minor` of the mounted filesystem: a FUSE mount's settings in `/sys/class/bdi/<device>/`.
    pub device: String,
}

/// The mount on top at `path` (the last one listed there: later mounts hide earlier ones), if any.
pub(crate) fn mounted_at(path: &Path) -> std::io::Result<Option<MountEntry>> {
    let text = std::fs::read_to_string(MOUNTINFO)?;
    Ok(find(&text, path.as_os_str().as_bytes()))
}

fn find(mountinfo: &str, wanted: &[u8]) -> Option<MountEntry> {
    mountinfo
        .lines()
        .rev()
        .filter_map(parse_line)
        .find(|(point, _)| point == wanted)
        .map(|(_, entry)| entry)
}

/// `36 35 98:0 /root /mnt/point rw,noatime master:1 - ext3 /dev/root rw`: the device is the third field, the
/// mount point the fifth; after the optional fields and a lone `-` come the type and the source.
fn parse_line(line: &str) -> Option<(Vec<u8>, MountEntry)> {
    let mut fields = line.split(' ');
    let device = fields.nth(2)?;
    let point = fields.nth(1)?;
    let mut rest = fields.skip_while(|f| *f != "-").skip(1);
    let fs_type = rest.next()?;
    let source = rest.next().unwrap_or_default();
    Some((
        unescape(point),
        MountEntry {
            fs_type: String::from_utf8_lossy(&unescape(fs_type)).into_owned(),
            source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            device: device.to_string(),
        },
    ))
}

/// The kernel writes space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| {
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 8).ok())
            });
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
41 22 0:38 / /srv/ftp/user\\0401 rw,nosuid,nodev,relatime shared:7 - fuse.cosftpd cosftpd:bucket-1250000000 rw,user_id=0
42 22 0:39 / /srv/other rw,relatime - fuse sshfs#host:/ rw
43 22 0:40 / /srv/other rw,relatime - tmpfs tmpfs rw
";

    #[test]
    fn escapes() {
        assert_eq!(unescape("/tmp/a\\040b"), b"/tmp/a b");
        assert_eq!(unescape("/x\\134y"), b"/x\\y");
        assert_eq!(unescape("/plain"), b"/plain");
        assert_eq!(unescape("/odd\\"), b"/odd\\");
    }

    #[test]
    fn type_and_source_of_a_mount_point() {
        let own = find(SAMPLE, b"/srv/ftp/user 1").expect("listed");
        assert_eq!(own.fs_type, "fuse.cosftpd");
        assert_eq!(own.source, "cosftpd:bucket-1250000000");
        assert_eq!(own.device, "0:38");
        // Two mounts on one point: the later one is on top.
        let top = find(SAMPLE, b"/srv/other").expect("listed");
        assert_eq!(top.fs_type, "tmpfs");
        assert_eq!(find(SAMPLE, b"/srv"), None);
        assert_eq!(find(SAMPLE, b"/").map(|e| e.fs_type), Some("ext4".into()));
    }

    #[test]
    fn this_process_sees_its_root_and_not_a_fresh_directory() {
        assert!(mounted_at(Path::new("/")).expect("mountinfo").is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(mounted_at(dir.path()).expect("mountinfo"), None);
    }
}
