//! Build metadata for `cosftpd --version`: the git commit the binary was built from.
//!
//! Sets `COSFTPD_GIT_COMMIT` for the crate: the short hash of HEAD, with `-dirty` when tracked files differ from it;
//! empty when the source is not a git checkout (a crate tarball, a source package) and git cannot say. A packager
//! building from a tarball may set `COSFTPD_GIT_COMMIT` in the environment to the commit the tarball was made from.

use std::path::{Path, PathBuf};
use std::process::Command;

const OVERRIDE: &str = "COSFTPD_GIT_COMMIT";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    let commit = std::env::var(OVERRIDE)
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
            Git { dir: manifest_dir }.commit()
        })
        .unwrap_or_default();
    println!("cargo:rustc-env=COSFTPD_GIT_COMMIT={}", commit.trim());
}

struct Git {
    dir: PathBuf,
}

impl Git {
    fn commit(&self) -> Option<String> {
        // Only this package's own repository counts: a tarball unpacked inside some other checkout (vendored
        // sources) must not report that checkout's commit.
        if !self.run(&["rev-parse", "--show-prefix"])?.is_empty() {
            return None;
        }
        let hash = self.run(&["rev-parse", "--short", "HEAD"])?;
        self.rerun_when_head_moves();
        // --no-optional-locks: `git status` would otherwise refresh and rewrite the index, whose change would run
        // this script again on every build.
        let changes = self.run(&[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])?;
        Some(if changes.is_empty() {
            hash
        } else {
            format!("{hash}-dirty")
        })
    }

    /// A commit, checkout or `git add` changes HEAD, the branch ref or the index; an edit under src/ changes what
    /// "-dirty" means. Other edits (docs, tests) do not rebuild the crate for the sake of its version string.
    fn rerun_when_head_moves(&self) {
        let mut watched = vec![self.dir.join("src"), self.dir.join("Cargo.toml")];
        let mut git_paths = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
        if let Some(branch) = self.run(&["symbolic-ref", "-q", "HEAD"]) {
            git_paths.push(branch);
        }
        for name in git_paths {
            // Relative to the work tree, or absolute (a linked worktree's, the common directory's).
            if let Some(path) = self.run(&["rev-parse", "--git-path", &name]) {
                watched.push(self.dir.join(path));
            }
        }
        // A watched path that does not exist would make cargo run this script on every build.
        for path in watched.iter().filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    /// Trimmed stdout of a successful git command; `None` when git is missing, fails, or this is no checkout.
    fn run(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout)
            .ok()
            .map(|s| s.trim().to_string())
    }
}
