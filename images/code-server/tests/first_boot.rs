//! Runs the real `first-boot.sh` with bash and git against temp dirs: a dotfiles
//! repository (a real git repository, cloned over `file://`), a volume and a home.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

fn script(name: &str) -> PathBuf {
    Path::new(HERE).join(name)
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A machine's view: the volume, the home on its root filesystem, and a dotfiles
/// repository it can clone.
struct Machine {
    _root: tempfile::TempDir,
    volume: PathBuf,
    home: PathBuf,
    repo: PathBuf,
    init: PathBuf,
}

impl Machine {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let volume = root.path().join("volume");
        let home = root.path().join("home");
        let repo = root.path().join("dotfiles");
        for dir in [&volume, &home, &repo] {
            fs::create_dir_all(dir).expect("dir");
        }
        let init = root.path().join("init.sh");
        run_ok(git(&repo).args(["init", "--quiet", "--initial-branch=main"]));
        Machine {
            _root: root,
            volume,
            home,
            repo,
            init,
        }
    }

    /// Commits `files` (name, contents) to the dotfiles repository.
    fn commit(&self, files: &[(&str, &str)]) {
        for (name, contents) in files {
            fs::write(self.repo.join(name), contents).expect("write");
        }
        run_ok(git(&self.repo).args(["add", "--all"]));
        run_ok(git(&self.repo).args(["commit", "--quiet", "-m", "dotfiles"]));
    }

    fn url(&self) -> String {
        format!("file://{}", self.repo.display())
    }

    fn command(&self, dotfiles: bool) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(script("first-boot.sh"))
            .env("SWARM_VOLUME", &self.volume)
            .env("HOME", &self.home)
            .env("SWARM_INIT_SCRIPT", &self.init)
            .env_remove("SWARM_FIRST_BOOT_TIMEOUT_SECONDS");
        if dotfiles {
            cmd.env("SWARM_DOTFILES_URL", self.url());
        } else {
            cmd.env_remove("SWARM_DOTFILES_URL");
        }
        cmd
    }

    fn boot(&self) {
        run_ok(&mut self.command(true));
    }

    /// What a fresh root filesystem looks like to the script: the marker is gone.
    fn fresh_root_filesystem(&self) {
        fs::remove_file(self.home.join(".swarm-first-boot-ran")).expect("marker");
    }

    fn status(&self, step: &str) -> String {
        fs::read_to_string(self.volume.join(format!(".swarm/first-boot/{step}.json")))
            .unwrap_or_else(|e| panic!("{step}.json: {e}"))
    }

    fn log(&self, step: &str) -> String {
        fs::read_to_string(self.volume.join(format!(".swarm/first-boot/{step}.log")))
            .unwrap_or_else(|e| panic!("{step}.log: {e}"))
    }
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let rest = &status[status
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {status}"))
        + key.len()..];
    let end = rest.find([',', '}']).expect("field end");
    rest[..end].trim_matches('"')
}

#[test]
fn clones_once_and_runs_the_install_script_once_per_root_filesystem() {
    let m = Machine::new();
    m.commit(&[(
        "install.sh",
        "echo installing from $PWD\necho x >> \"$SWARM_VOLUME/runs\"\ntouch \"$HOME/.installed\"\n",
    )]);
    m.boot();
    let status = m.status("dotfiles");
    assert_eq!(field(&status, "state"), "succeeded", "{status}");
    assert_eq!(field(&status, "exit_code"), "0");
    assert_eq!(field(&status, "script"), "install.sh");
    assert!(!field(&status, "finished_at").is_empty());
    assert!(
        m.log("dotfiles").contains("installing from"),
        "the output is kept"
    );
    assert!(m.home.join(".installed").exists());
    assert!(
        m.volume.join(".swarm/dotfiles/install.sh").exists(),
        "cloned onto the volume"
    );

    // The same root filesystem again (code-server restarted in place): nothing runs.
    m.boot();
    assert_eq!(
        fs::read_to_string(m.volume.join("runs")).expect("runs"),
        "x\n"
    );

    // A fresh root filesystem (every start on Fly): the install runs again, from the
    // clone kept on the volume, which is not fetched again.
    m.commit(&[("install.sh", "echo changed upstream\n")]);
    m.fresh_root_filesystem();
    m.boot();
    assert_eq!(
        fs::read_to_string(m.volume.join("runs")).expect("runs"),
        "x\nx\n"
    );
    assert!(!m.log("dotfiles").contains("changed upstream"));
}

#[test]
fn runs_the_first_of_install_bootstrap_setup() {
    let m = Machine::new();
    m.commit(&[
        ("setup.sh", "echo setup\n"),
        ("bootstrap.sh", "echo bootstrap\n"),
    ]);
    m.boot();
    assert_eq!(field(&m.status("dotfiles"), "script"), "bootstrap.sh");
    assert_eq!(m.log("dotfiles").trim(), "bootstrap");
}

#[test]
fn a_failing_install_is_recorded_with_its_exit_code() {
    let m = Machine::new();
    m.commit(&[("install.sh", "echo half done; echo broken >&2; exit 3\n")]);
    m.boot();
    let status = m.status("dotfiles");
    assert_eq!(field(&status, "state"), "failed", "{status}");
    assert_eq!(field(&status, "exit_code"), "3");
    let log = m.log("dotfiles");
    assert!(log.contains("half done") && log.contains("broken"), "{log}");
}

#[test]
fn without_an_install_script_the_dotfiles_are_linked_never_over_a_file() {
    let m = Machine::new();
    m.commit(&[
        (".bashrc", "alias ll='ls -l'\n"),
        (".gitconfig", "[user]\n"),
    ]);
    fs::write(m.home.join(".gitconfig"), "mine\n").expect("existing file");
    m.boot();
    assert_eq!(field(&m.status("dotfiles"), "state"), "linked");
    let link = fs::read_link(m.home.join(".bashrc")).expect(".bashrc is a link");
    assert!(link.starts_with(&m.volume), "{link:?}");
    assert_eq!(
        fs::read_to_string(m.home.join(".gitconfig")).expect("kept"),
        "mine\n"
    );
    assert!(
        !m.home.join(".git").exists(),
        "the repository's .git is not linked"
    );
}

#[test]
fn a_clone_that_fails_leaves_no_partial_clone() {
    let m = Machine::new();
    let mut cmd = m.command(false);
    cmd.env("SWARM_DOTFILES_URL", "file:///nonexistent/dotfiles");
    run_ok(&mut cmd);
    assert_eq!(field(&m.status("dotfiles"), "state"), "clone_failed");
    assert!(!m.volume.join(".swarm/dotfiles").exists());
    assert!(!m.volume.join(".swarm/dotfiles.new").exists());
    assert!(!m.log("dotfiles").is_empty(), "git's message is kept");
}

#[test]
fn the_init_script_runs_in_the_volume_after_the_dotfiles() {
    let m = Machine::new();
    m.commit(&[("install.sh", "date +%s%N > \"$SWARM_VOLUME/dotfiles-at\"\n")]);
    fs::write(&m.init, "pwd\ndate +%s%N > \"$SWARM_VOLUME/init-at\"\n").expect("init");
    m.boot();
    let status = m.status("init");
    assert_eq!(field(&status, "state"), "succeeded", "{status}");
    assert_eq!(m.log("init").trim(), m.volume.display().to_string());
    let at = |f: &str| -> u128 {
        fs::read_to_string(m.volume.join(f))
            .expect(f)
            .trim()
            .parse()
            .expect("ns")
    };
    assert!(at("dotfiles-at") <= at("init-at"));
}

#[test]
fn an_init_script_over_its_time_is_stopped_and_says_so() {
    let m = Machine::new();
    fs::write(&m.init, "echo started\nsleep 60\n").expect("init");
    let started = Instant::now();
    run_ok(
        m.command(false)
            .env("SWARM_FIRST_BOOT_TIMEOUT_SECONDS", "1"),
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout held"
    );
    let status = m.status("init");
    assert_eq!(field(&status, "state"), "timed_out", "{status}");
    assert!(m.log("init").contains("ran over 1s"));
    assert!(
        !m.volume.join(".swarm/first-boot/dotfiles.json").exists(),
        "no dotfiles asked for"
    );
}

#[test]
fn boot_starts_the_first_boot_beside_code_server() {
    let m = Machine::new();
    m.commit(&[("install.sh", "echo from boot\n")]);
    let baked = m.volume.parent().expect("root").join("baked");
    fs::create_dir_all(baked.join("extensions")).expect("baked");
    let stand_in = baked.join("entrypoint.sh");
    fs::write(&stand_in, "#!/usr/bin/env bash\nexit 0\n").expect("stand-in");
    run_ok(Command::new("chmod").arg("+x").arg(&stand_in));
    run_ok(
        Command::new("bash")
            .arg(script("boot.sh"))
            .env("SWARM_BAKED_DIR", &baked)
            .env("SWARM_VOLUME", &m.volume)
            .env("DEFAULT_WORKSPACE", &m.volume)
            .env("SWARM_BOOT_EXEC", &stand_in)
            .env(
                "HASHED_PASSWORD",
                "$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA",
            )
            .env("HOME", &m.home)
            .env("SWARM_INIT_SCRIPT", &m.init)
            .env("SWARM_DOTFILES_URL", m.url())
            .env_remove("CODE_SERVER_IDLE_TIMEOUT_SECONDS"),
    );
    // boot.sh does not wait for it: wait here for its outcome.
    let status_file = m.volume.join(".swarm/first-boot/dotfiles.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if fs::read_to_string(&status_file).is_ok_and(|s| field(&s, "state") == "succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "the first boot did not run");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(m.log("dotfiles").trim(), "from boot");
}
