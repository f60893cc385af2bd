//! Runs the real `boot.sh` (and `install-extensions.sh`) with bash against temp dirs,
//! and checks the Dockerfile and extensions.txt the image is built from.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

fn image_file(name: &str) -> PathBuf {
    Path::new(HERE).join(name)
}

fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().expect("has a parent")).expect("create parent");
    fs::write(path, contents).expect("write file");
}

fn write_exec(path: &Path, contents: &str) {
    write(path, contents);
    let status = Command::new("chmod")
        .arg("+x")
        .arg(path)
        .status()
        .expect("run chmod");
    assert!(status.success());
}

/// A baked dir, a volume and a stand-in for code-server's entrypoint that records its argv.
struct Machine {
    _root: tempfile::TempDir,
    baked: PathBuf,
    volume: PathBuf,
    argv_file: PathBuf,
    stand_in: PathBuf,
}

impl Machine {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let baked = root.path().join("baked");
        let volume = root.path().join("volume");
        let argv_file = root.path().join("argv");
        let stand_in = root.path().join("entrypoint.sh");
        fs::create_dir_all(baked.join("extensions")).expect("baked dir");
        fs::create_dir_all(&volume).expect("volume dir");
        write_exec(
            &stand_in,
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"$ARGV_FILE\"\n",
        );
        Machine {
            _root: root,
            baked,
            volume,
            argv_file,
            stand_in,
        }
    }

    /// Replaces the image's baked extensions, like a new image would.
    fn bake(&self, folders: &[&str]) {
        let dir = self.baked.join("extensions");
        fs::remove_dir_all(&dir).expect("clear baked");
        fs::create_dir_all(&dir).expect("baked extensions");
        for folder in folders {
            write(
                &dir.join(folder).join("package.json"),
                &format!("{{\"name\": \"{folder}\"}}"),
            );
        }
        // code-server's own index in the baked dir: a file, not an extension.
        write(&dir.join("extensions.json"), "[]");
    }

    fn ext_dir(&self) -> PathBuf {
        self.volume.join(".swarm/code-server/extensions")
    }

    fn user_settings(&self) -> PathBuf {
        self.volume
            .join(".swarm/code-server/data/User/settings.json")
    }

    fn user_install(&self, folder: &str) {
        write(
            &self.ext_dir().join(folder).join("package.json"),
            "{\"user\": true}",
        );
    }

    fn extensions(&self) -> BTreeSet<String> {
        let Ok(entries) = fs::read_dir(self.ext_dir()) else {
            return BTreeSet::new();
        };
        entries
            .map(|e| e.expect("dir entry"))
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn manifest(&self) -> Vec<String> {
        fs::read_to_string(self.volume.join(".swarm/baked-extensions.txt"))
            .expect("manifest")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(image_file("boot.sh"))
            .env("SWARM_BAKED_DIR", &self.baked)
            .env("SWARM_VOLUME", &self.volume)
            .env("DEFAULT_WORKSPACE", &self.volume)
            .env("SWARM_BOOT_EXEC", &self.stand_in)
            .env("ARGV_FILE", &self.argv_file)
            .env(
                "HASHED_PASSWORD",
                "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA",
            )
            .env_remove("PASSWORD")
            .env_remove("CODE_SERVER_IDLE_TIMEOUT_SECONDS")
            .env_remove("SWARM_DOTFILES_URL")
            .env("SWARM_INIT_SCRIPT", self.baked.join("no-init.sh"));
        cmd
    }

    fn boot(&self) -> Vec<String> {
        let out = self.command().output().expect("run boot.sh");
        assert_success(&out);
        fs::read_to_string(&self.argv_file)
            .expect("the stand-in ran")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "boot.sh failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const V1: [&str; 3] = [
    "ms-python.python-2024.1.0",
    "dbaeumer.vscode-eslint-3.0.10",
    "esbenp.prettier-vscode-11.0.0",
];

#[test]
fn first_boot_installs_baked_extensions_and_passes_volume_paths_to_code_server() {
    let m = Machine::new();
    m.bake(&V1);
    let argv = m.boot();

    assert_eq!(m.extensions(), set(&V1));
    assert_eq!(
        m.manifest(),
        vec![
            "dbaeumer.vscode-eslint-3.0.10",
            "esbenp.prettier-vscode-11.0.0",
            "ms-python.python-2024.1.0"
        ]
    );
    let ext_dir = m.ext_dir().display().to_string();
    let data_dir = m
        .volume
        .join(".swarm/code-server/data")
        .display()
        .to_string();
    let workspace = m.volume.display().to_string();
    assert_eq!(
        argv,
        vec![
            "--bind-addr",
            "0.0.0.0:8080",
            "--user-data-dir",
            data_dir.as_str(),
            "--extensions-dir",
            ext_dir.as_str(),
            workspace.as_str(),
        ]
    );
    // Copies, not links into the image: a rollback must not leave dangling extensions.
    let python = m.ext_dir().join("ms-python.python-2024.1.0");
    assert!(!fs::symlink_metadata(&python).expect("stat").is_symlink());
    assert!(python.join("package.json").is_file());
    assert!(!m.ext_dir().join("extensions.json").exists());
}

#[test]
fn extra_arguments_come_before_the_workspace() {
    let m = Machine::new();
    m.bake(&V1);
    let out = m.command().arg("--log").arg("debug").output().expect("run");
    assert_success(&out);
    let argv = fs::read_to_string(&m.argv_file).expect("argv");
    let argv: Vec<&str> = argv.lines().collect();
    let n = argv.len();
    assert_eq!(argv[n - 3..n - 1], ["--log", "debug"]);
    assert_eq!(argv[n - 1], m.volume.display().to_string());
}

#[test]
fn user_installed_extension_stays() {
    let m = Machine::new();
    m.bake(&V1);
    m.user_install("rust-lang.rust-analyzer-0.3.2000");
    m.boot();
    m.boot();
    assert!(m.extensions().contains("rust-lang.rust-analyzer-0.3.2000"));
    assert!(!m.manifest().iter().any(|l| l.starts_with("rust-lang")));
}

#[test]
fn image_update_upgrades_adds_and_removes_only_what_boot_placed() {
    let m = Machine::new();
    m.bake(&V1);
    m.boot();
    m.user_install("rust-lang.rust-analyzer-0.3.2000");
    // code-server wrote its index after the first boot.
    write(&m.ext_dir().join("extensions.json"), "[{\"stale\": true}]");

    // New image: python upgraded, eslint dropped, prettier kept, go added.
    m.bake(&[
        "ms-python.python-2024.2.0",
        "esbenp.prettier-vscode-11.0.0",
        "golang.go-0.42.0",
    ]);
    m.boot();

    assert_eq!(
        m.extensions(),
        set(&[
            "ms-python.python-2024.2.0",
            "esbenp.prettier-vscode-11.0.0",
            "golang.go-0.42.0",
            "rust-lang.rust-analyzer-0.3.2000",
        ])
    );
    assert_eq!(
        m.manifest(),
        vec![
            "esbenp.prettier-vscode-11.0.0",
            "golang.go-0.42.0",
            "ms-python.python-2024.2.0"
        ]
    );
    // The set changed, so code-server must rebuild its index from the folders.
    assert!(!m.ext_dir().join("extensions.json").exists());
}

#[test]
fn rollback_restores_the_older_baked_set() {
    let m = Machine::new();
    m.bake(&V1);
    m.boot();
    m.bake(&["ms-python.python-2024.2.0"]);
    m.boot();
    m.bake(&V1);
    m.boot();
    assert_eq!(m.extensions(), set(&V1));
}

#[test]
fn user_installed_newer_version_of_a_baked_extension_is_never_removed() {
    let m = Machine::new();
    m.bake(&V1);
    m.boot();
    m.user_install("ms-python.python-2025.0.0");
    m.bake(&["ms-python.python-2024.2.0"]);
    m.boot();
    let exts = m.extensions();
    assert!(exts.contains("ms-python.python-2025.0.0"));
    assert!(exts.contains("ms-python.python-2024.2.0"));
    assert!(!exts.contains("ms-python.python-2024.1.0"));
}

#[test]
fn a_version_the_user_had_before_the_image_baked_it_stays_theirs() {
    let m = Machine::new();
    m.user_install("golang.go-0.42.0");
    m.bake(&["golang.go-0.42.0"]);
    m.boot();
    assert_eq!(
        fs::read_to_string(m.ext_dir().join("golang.go-0.42.0/package.json")).expect("read"),
        "{\"user\": true}"
    );
    // The image drops it: boot did not put it there, so it stays.
    m.bake(&[]);
    m.boot();
    assert!(m.extensions().contains("golang.go-0.42.0"));
    assert!(m.manifest().is_empty());
}

#[test]
fn a_baked_extension_the_user_uninstalled_is_not_reinstalled() {
    let m = Machine::new();
    m.bake(&V1);
    m.boot();
    fs::remove_dir_all(m.ext_dir().join("dbaeumer.vscode-eslint-3.0.10")).expect("uninstall");
    m.boot();
    assert!(!m.extensions().contains("dbaeumer.vscode-eslint-3.0.10"));
}

#[test]
fn baked_settings_are_used_only_when_the_user_has_none() {
    let m = Machine::new();
    m.bake(&V1);
    write(&m.baked.join("settings.json"), "{\"baked\": 1}");
    m.boot();
    assert_eq!(
        fs::read_to_string(m.user_settings()).expect("settings"),
        "{\"baked\": 1}"
    );

    write(&m.user_settings(), "{\"mine\": 2}");
    write(&m.baked.join("settings.json"), "{\"baked\": 3}");
    m.boot();
    assert_eq!(
        fs::read_to_string(m.user_settings()).expect("settings"),
        "{\"mine\": 2}"
    );
}

#[test]
fn second_boot_with_the_same_image_changes_nothing() {
    let m = Machine::new();
    m.bake(&V1);
    let first = m.boot();
    let index = "[{\"identifier\":{\"id\":\"ms-python.python\"}}]";
    write(&m.ext_dir().join("extensions.json"), index);
    let exts = m.extensions();
    let manifest = m.manifest();

    let second = m.boot();
    assert_eq!(first, second);
    assert_eq!(m.extensions(), exts);
    assert_eq!(m.manifest(), manifest);
    // Nothing changed, so code-server's index (and its metadata) is left alone.
    assert_eq!(
        fs::read_to_string(m.ext_dir().join("extensions.json")).expect("index"),
        index
    );
}

#[test]
fn missing_volume_fails_naming_it() {
    let m = Machine::new();
    m.bake(&V1);
    let missing = m.volume.join("not-mounted");
    let out = m
        .command()
        .env("SWARM_VOLUME", &missing)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "stderr: {stderr}"
    );
    assert!(!m.argv_file.exists(), "code-server must not start");
}

#[test]
fn missing_password_fails_before_code_server_starts() {
    let m = Machine::new();
    m.bake(&V1);
    let out = m
        .command()
        .env_remove("HASHED_PASSWORD")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HASHED_PASSWORD"));
    assert!(!m.argv_file.exists());
}

#[test]
fn idle_timeout_env_becomes_the_flag_and_bad_values_fail() {
    let m = Machine::new();
    m.bake(&V1);
    let out = m
        .command()
        .env("CODE_SERVER_IDLE_TIMEOUT_SECONDS", "900")
        .output()
        .expect("run");
    assert_success(&out);
    let argv = fs::read_to_string(&m.argv_file).expect("argv");
    assert!(argv.contains("--idle-timeout-seconds\n900\n"), "{argv}");

    for bad in ["60", "15m", "-5"] {
        let out = m
            .command()
            .env("CODE_SERVER_IDLE_TIMEOUT_SECONDS", bad)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("CODE_SERVER_IDLE_TIMEOUT_SECONDS"));
    }
}

/// Non-comment entries of extensions.txt.
fn extension_list() -> Vec<String> {
    fs::read_to_string(image_file("extensions.txt"))
        .expect("extensions.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn well_formed(entry: &str) -> bool {
    let (id, version) = match entry.split_once('@') {
        Some((id, v)) => (id, Some(v)),
        None => (entry, None),
    };
    let id_ok = id
        .split_once('.')
        .is_some_and(|(publisher, name)| is_name(publisher) && is_name(name));
    let version_ok = version.is_none_or(|v| {
        let core = v.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    });
    id_ok && version_ok
}

#[test]
fn the_well_formed_check_rejects_bad_entries() {
    for good in [
        "ms-python.python",
        "esbenp.prettier-vscode@11.0.0",
        "a.b@1.2.3-rc.1",
    ] {
        assert!(well_formed(good), "{good}");
    }
    for bad in [
        "python",
        "ms python.python",
        ".python",
        "a.b@latest",
        "a.b@1.2",
        "a.b c",
    ] {
        assert!(!well_formed(bad), "{bad}");
    }
}

#[test]
fn extensions_txt_is_well_formed_and_names_the_required_extensions() {
    let list = extension_list();
    for entry in &list {
        assert!(
            well_formed(entry),
            "malformed line in extensions.txt: {entry:?}"
        );
    }
    let ids: Vec<String> = list
        .iter()
        .map(|e| e.split('@').next().unwrap_or("").to_ascii_lowercase())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate extension in {ids:?}");
    for required in [
        "ms-python.python",
        "dbaeumer.vscode-eslint",
        "esbenp.prettier-vscode",
    ] {
        assert!(ids.iter().any(|id| id == required), "{required} missing");
    }
}

#[test]
fn dockerfile_names_no_extension_and_pins_its_base() {
    let dockerfile = fs::read_to_string(image_file("Dockerfile")).expect("Dockerfile");
    let lower = dockerfile.to_ascii_lowercase();
    for entry in extension_list() {
        let id = entry.split('@').next().unwrap_or("").to_ascii_lowercase();
        assert!(!lower.contains(&id), "Dockerfile names {id}");
    }
    assert!(
        !lower.contains("--install-extension"),
        "extensions come from extensions.txt"
    );

    let froms: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 1, "{froms:?}");
    let image = froms[0].split_whitespace().nth(1).expect("FROM image");
    let (name, tag) = image.rsplit_once(':').expect("FROM has a tag");
    assert_eq!(name, "codercom/code-server");
    assert_ne!(tag, "latest");
    assert!(
        tag.split('.').count() == 3 && tag.split('.').all(|p| p.parse::<u32>().is_ok()),
        "tag {tag} is not an exact version"
    );
}

/// A fake `code-server` for install-extensions.sh: records installs, lists them back.
fn fake_code_server(dir: &Path, refuse: &str) -> PathBuf {
    let path = dir.join("code-server");
    write_exec(
        &path,
        &format!(
            r#"#!/usr/bin/env bash
set -eu
ext_dir="$2"
case "$3" in
  --install-extension)
    [ "$4" != "{refuse}" ] || exit 0
    echo "$4" >> "$ext_dir/installed" ;;
  --list-extensions)
    [ -f "$ext_dir/installed" ] || exit 0
    while read -r e; do
      case "$e" in *@*) echo "$e" ;; *) echo "$e@1.0.0" ;; esac
    done < "$ext_dir/installed" ;;
esac
"#
        ),
    );
    path
}

#[test]
fn install_extensions_reads_the_list_and_skips_comments() {
    let root = tempfile::tempdir().expect("tempdir");
    let list = root.path().join("extensions.txt");
    write(
        &list,
        "# header\n\nMs-Python.python  # trailing comment\n  esbenp.prettier-vscode@11.0.0\n",
    );
    let fake = fake_code_server(root.path(), "none");
    let out_dir = root.path().join("opt/extensions");
    let out = Command::new("bash")
        .arg(image_file("install-extensions.sh"))
        .arg(&list)
        .arg(&out_dir)
        .env("CODE_SERVER", &fake)
        .output()
        .expect("run");
    assert_success(&out);
    assert_eq!(
        fs::read_to_string(out_dir.join("installed")).expect("installed"),
        "Ms-Python.python\nesbenp.prettier-vscode@11.0.0\n"
    );
    let lock = fs::read_to_string(root.path().join("opt/extensions.lock")).expect("lock");
    assert!(lock.contains("ms-python.python@1.0.0"), "{lock}");
}

#[test]
fn install_extensions_fails_when_one_did_not_install() {
    let root = tempfile::tempdir().expect("tempdir");
    let list = root.path().join("extensions.txt");
    write(&list, "ms-python.python\ngolang.go\n");
    let fake = fake_code_server(root.path(), "golang.go");
    let out = Command::new("bash")
        .arg(image_file("install-extensions.sh"))
        .arg(&list)
        .arg(root.path().join("ext"))
        .env("CODE_SERVER", &fake)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("golang.go"));
}
