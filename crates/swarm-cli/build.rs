//! Bakes the git commit into the binary for `swarm --version` and `GET /v1/version`.
//! `SWARM_GIT_COMMIT` set by a release build wins; outside a git checkout (a source
//! tarball) the commit is unknown and says so.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SWARM_GIT_COMMIT");
    let commit = std::env::var("SWARM_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(git_commit);
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    match commit {
        Some(commit) => {
            println!("cargo:rustc-env=SWARM_GIT_COMMIT={commit}");
            println!("cargo:rustc-env=SWARM_LONG_VERSION={version} (commit {commit})");
        }
        None => println!("cargo:rustc-env=SWARM_LONG_VERSION={version} (commit unknown)"),
    }
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn git_commit() -> Option<String> {
    // Rebuilt when HEAD moves: a checkout (HEAD) or a commit on the branch (its ref).
    for path in ["HEAD", "packed-refs"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={file}");
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}
