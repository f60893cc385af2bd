//! The whole lifecycle of one workspace through the real `swarm` binary: create,
//! health, logs, stop, start, resize, machine rollback, update, rollback, snapshot,
//! restore, move, delete; every step a separate invocation with `--json` parsed.
//!
//! One body, two targets:
//! - `lifecycle_on_fly_sim`: a fly-sim on 127.0.0.1 with zero latency, in the ordinary
//!   suite (a few seconds), so the body is never dead code.
//! - `lifecycle_on_live_fly`: real Fly.io, opt-in only (CONVENTIONS, tier 4):
//!   `SWARM_LIVE_FLY=1 FLY_API_TOKEN=… cargo test -p swarm-cli --test live_fly -- --nocapture`.
//!   It makes one app named `swarm-live-<random hex>` (billed for the minutes it runs)
//!   and always deletes it, also when a step fails or panics. Optional: `FLY_ORG`,
//!   `FLY_FLAPS_BASE_URL` / `FLY_API_BASE_URL` (default: Fly's own endpoints),
//!   `SWARM_LIVE_REGION` (ams), `SWARM_LIVE_MOVE_REGION` (fra), `SWARM_LIVE_IMAGE`,
//!   `SWARM_LIVE_IMAGE_NEXT` (two code-server tags that exist).
//!
//! The token and the workspace password never appear in output: every failure
//! message is redacted first.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use common::{CANARY_TOKEN, Home};
use fly_sim::{Latency, Sim, SimConfig};
use serde_json::Value;

const LIVE_ENV: &str = "SWARM_LIVE_FLY";
const SKIP_MESSAGE: &str = "SKIPPED: live Fly.io test; run with SWARM_LIVE_FLY=1 \
     FLY_API_TOKEN=… cargo test -p swarm-cli --test live_fly -- --nocapture";

/// Where the lifecycle runs and how long each step may take.
struct Target {
    live: bool,
    flaps_url: String,
    api_url: String,
    /// Passed to `swarm` as FLY_API_TOKEN; redacted from every message.
    token: String,
    org: Option<String>,
    region: String,
    move_region: String,
    image: String,
    next_image: String,
    /// Deadline of one `swarm` invocation, and of waiting for health, logs or a snapshot.
    step_deadline: Duration,
}

impl Target {
    fn sim(url: &str) -> Self {
        Self {
            live: false,
            flaps_url: url.to_owned(),
            api_url: url.to_owned(),
            token: CANARY_TOKEN.to_owned(),
            org: None,
            region: "ams".to_owned(),
            move_region: "fra".to_owned(),
            image: "codercom/code-server:4.96.4".to_owned(),
            next_image: "codercom/code-server:4.133.0".to_owned(),
            step_deadline: Duration::from_secs(60),
        }
    }

    /// Real Fly.io; `Err(SKIP_MESSAGE)` when not asked for, another `Err` when asked
    /// for without a token.
    fn live() -> Result<Self, String> {
        if std::env::var(LIVE_ENV).as_deref() != Ok("1") {
            return Err(SKIP_MESSAGE.to_owned());
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let token = var("FLY_API_TOKEN")
            .or_else(|| var("FLY_ACCESS_TOKEN"))
            .ok_or_else(|| {
                format!("{LIVE_ENV}=1 needs a Fly token in FLY_API_TOKEN or FLY_ACCESS_TOKEN")
            })?;
        Ok(Self {
            live: true,
            flaps_url: var("FLY_FLAPS_BASE_URL")
                .unwrap_or_else(|| "https://api.machines.dev".to_owned()),
            api_url: var("FLY_API_BASE_URL").unwrap_or_else(|| "https://api.fly.io".to_owned()),
            token,
            org: var("FLY_ORG"),
            region: var("SWARM_LIVE_REGION").unwrap_or_else(|| "ams".to_owned()),
            move_region: var("SWARM_LIVE_MOVE_REGION").unwrap_or_else(|| "fra".to_owned()),
            image: var("SWARM_LIVE_IMAGE")
                .unwrap_or_else(|| "codercom/code-server:4.96.4".to_owned()),
            next_image: var("SWARM_LIVE_IMAGE_NEXT")
                .unwrap_or_else(|| "codercom/code-server:4.133.0".to_owned()),
            // Real Fly: image pulls, volume forks and cross-region moves take minutes.
            step_deadline: Duration::from_secs(600),
        })
    }
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real `swarm` binary against a target, with its own home and store, and
/// keeps the secrets it must redact.
struct Swarm<'a> {
    home: &'a Home,
    target: &'a Target,
    rt: &'a tokio::runtime::Runtime,
    secrets: RefCell<Vec<String>>,
}

impl<'a> Swarm<'a> {
    fn new(home: &'a Home, target: &'a Target, rt: &'a tokio::runtime::Runtime) -> Self {
        Self {
            home,
            target,
            rt,
            secrets: RefCell::new(vec![target.token.clone()]),
        }
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in self.secrets.borrow().iter().filter(|s| !s.is_empty()) {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        text
    }

    /// One invocation, waited for up to the step deadline; never panics (teardown uses it).
    fn try_run(&self, args: &[&str]) -> Result<Outcome, String> {
        let mut cmd = self.home.swarm();
        cmd.env("FLY_API_TOKEN", &self.target.token)
            .env("FLY_FLAPS_BASE_URL", &self.target.flaps_url)
            .env("FLY_API_BASE_URL", &self.target.api_url)
            .env(
                "SWARM_DB",
                format!("sqlite://{}", self.home.path().join("swarm.db").display()),
            )
            .args(args);
        if let Some(org) = &self.target.org {
            cmd.env("FLY_ORG", org);
        }
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        let deadline = self.target.step_deadline;
        let output = self
            .rt
            .block_on(async { tokio::time::timeout(deadline, cmd.output()).await })
            .map_err(|_| format!("`swarm {}` ran past {deadline:?}", args.join(" ")))?
            .map_err(|error| format!("`swarm {}` did not run: {error}", args.join(" ")))?;
        let outcome = Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let token = self.target.token.as_str();
        if outcome.stdout.contains(token) || outcome.stderr.contains(token) {
            return Err(format!("`swarm {}` printed the Fly token", args.join(" ")));
        }
        Ok(outcome)
    }

    fn run(&self, args: &[&str]) -> Outcome {
        self.try_run(args)
            .unwrap_or_else(|error| panic!("{}", self.redact(&error)))
    }

    /// A step that must succeed: `--json` added, its one document parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args);
        // Redacted whole: the command line may hold a secret too.
        if out.code != 0 {
            panic!(
                "{}",
                self.redact(&format!(
                    "`swarm {}` exited {}\nstdout:\n{}\nstderr:\n{}",
                    args.join(" "),
                    out.code,
                    out.stdout,
                    out.stderr
                ))
            );
        }
        serde_json::from_str(&out.stdout).unwrap_or_else(|error| {
            panic!(
                "{}",
                self.redact(&format!(
                    "`swarm {}`: stdout is not one JSON document ({error}):\n{}",
                    args.join(" "),
                    out.stdout
                ))
            )
        })
    }

    /// Repeats a read-only step until `done` holds, up to the step deadline. Fly
    /// settles some things after the command that made them returns (the URL's
    /// first answer, log shipping, a snapshot's `created`); the sim holds at once.
    fn until(&self, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let value = self.json(args);
            if done(&value) {
                return value;
            }
            if start.elapsed() >= self.target.step_deadline {
                panic!(
                    "{}",
                    self.redact(&format!(
                        "`swarm {}`: {what} not within {:?}; last answer:\n{value}",
                        args.join(" "),
                        self.target.step_deadline,
                    ))
                );
            }
            // Between reads of a remote API; a second apart keeps within Fly's limits.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Deletes the workspace when dropped: at the end, after a failed step, or while a
/// panic unwinds. Disarmed once the lifecycle's own delete succeeded.
struct Teardown<'a> {
    swarm: &'a Swarm<'a>,
    name: String,
    armed: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let name = self.name.as_str();
        match self.swarm.try_run(&["delete", name, "--yes", "--json"]) {
            Ok(out) if out.code == 0 => eprintln!("teardown: deleted workspace {name}"),
            Ok(out) => eprintln!(
                "teardown FAILED: `swarm delete {name} --yes` exited {}; remove the Fly app \
                 {name} by hand (`fly apps destroy {name}`)\n{}",
                out.code,
                self.swarm.redact(&out.stderr)
            ),
            Err(error) => eprintln!(
                "teardown FAILED: {}; remove the Fly app {name} by hand",
                self.swarm.redact(&error)
            ),
        }
    }
}

fn unique_name() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("swarm-live-{}", &hex[..12])
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The lifecycle. Each step checks what it must have changed.
fn lifecycle(swarm: &Swarm<'_>, name: &str) {
    let target = swarm.target;
    let mut teardown = Teardown {
        swarm,
        name: name.to_owned(),
        armed: true,
    };

    let created = swarm.json(&[
        "create",
        name,
        "--region",
        &target.region,
        "--image",
        &target.image,
    ]);
    let password = text(&created["password"]);
    swarm.secrets.borrow_mut().push(password.clone());
    assert_eq!(password.len(), 24, "a generated password");
    let ws = &created["workspace"];
    assert_eq!(ws["status"], "running");
    assert_eq!(ws["spec"]["region"].as_str(), Some(target.region.as_str()));
    let first_volume = text(&ws["volume_id"]);
    let machine = text(&ws["machine_id"]);
    let guest = ws["spec"]["guest"].clone();
    assert!(!first_volume.is_empty() && !machine.is_empty(), "{ws}");

    swarm.until(&["health", name], "healthy", |h| h["status"] == "healthy");
    swarm.until(&["logs", name, "-n", "20"], "log lines", |lines| {
        lines.as_array().is_some_and(|l| !l.is_empty())
    });

    let stopped = swarm.json(&["stop", name]);
    assert_eq!(stopped["workspace"]["status"], "stopped");
    let started = swarm.json(&["start", name]);
    assert_eq!(started["workspace"]["status"], "running");
    assert_eq!(
        text(&started["workspace"]["machine_id"]),
        machine,
        "start reuses it"
    );

    // Resize, then the machine rollback undoes it on the same machine and volume.
    let resized = swarm.json(&["resize", name, "--memory", "1024"]);
    assert_eq!(resized["changed"], true);
    assert_eq!(resized["workspace"]["spec"]["guest"]["memory_mb"], 1024);
    let back = swarm.json(&["rollback", name, "--machine"]);
    assert_eq!(back["workspace"]["spec"]["guest"], guest);
    assert_eq!(text(&back["workspace"]["volume_id"]), first_volume);
    assert_eq!(text(&back["workspace"]["machine_id"]), machine);

    let updated = swarm.json(&["update", name, "--image", &target.next_image]);
    assert_eq!(updated["to"]["version"], 2);
    assert_eq!(
        updated["workspace"]["spec"]["image"].as_str(),
        Some(target.next_image.as_str())
    );
    let rolled = swarm.json(&["rollback", name]);
    assert_eq!(rolled["to"]["rollback_of"], 1);
    assert_eq!(
        rolled["workspace"]["spec"]["image"].as_str(),
        Some(target.image.as_str())
    );
    let versions = swarm.json(&["versions", name]);
    assert_eq!(versions.as_array().map(Vec::len), Some(3), "{versions}");

    swarm.json(&["snapshot", "create", name]);
    let listed = swarm.until(&["snapshot", "list", name], "a created snapshot", |list| {
        list.as_array().is_some_and(|l| {
            l.iter()
                .any(|s| s["status"].is_null() || s["status"] == "created")
        })
    });
    let snapshot = listed
        .as_array()
        .and_then(|l| {
            l.iter()
                .rev()
                .find(|s| s["status"].is_null() || s["status"] == "created")
        })
        .map(|s| text(&s["id"]))
        .expect("a snapshot");
    let restored = swarm.json(&["restore", name, "--snapshot", &snapshot, "--yes"]);
    assert_eq!(restored["workspace"]["status"], "running");
    let restored_volume = text(&restored["workspace"]["volume_id"]);
    assert_ne!(restored_volume, first_volume, "restored into a new volume");

    let moved = swarm.json(&["move", name, "--region", &target.move_region]);
    assert_eq!(
        moved["workspace"]["spec"]["region"].as_str(),
        Some(target.move_region.as_str())
    );
    assert_ne!(text(&moved["workspace"]["volume_id"]), restored_volume);
    swarm.until(&["health", name], "healthy after the move", |h| {
        h["status"] == "healthy"
    });

    let deleted = swarm.json(&["delete", name, "--yes"]);
    assert_eq!(deleted["changed"], true);
    teardown.armed = false;
    let list = swarm.json(&["list"]);
    assert!(
        !list.as_array().is_some_and(|l| l
            .iter()
            .any(|w| w["name"] == name && w["status"] != "deleted")),
        "{list}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn sim_config() -> SimConfig {
    SimConfig {
        latency: Latency::Zero,
        ..SimConfig::default()
    }
}

#[test]
fn lifecycle_on_live_fly() {
    let target = match Target::live() {
        Ok(target) => target,
        Err(reason) if reason == SKIP_MESSAGE => {
            eprintln!("{reason}");
            return;
        }
        Err(reason) => panic!("{reason}"),
    };
    let rt = runtime();
    let home = Home::new();
    let swarm = Swarm::new(&home, &target, &rt);
    let name = unique_name();
    eprintln!(
        "live Fly.io: workspace {name} in {} (then {}), via {}",
        target.region, target.move_region, target.flaps_url
    );
    lifecycle(&swarm, &name);
    eprintln!("live Fly.io: lifecycle of {name} passed and it is deleted");
}

#[test]
fn lifecycle_on_fly_sim() {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(sim_config(), "127.0.0.1:0"))
        .expect("sim");
    let target = Target::sim(&sim.base_url());
    assert!(!target.live);
    let home = Home::new();
    let swarm = Swarm::new(&home, &target, &rt);
    lifecycle(&swarm, &unique_name());
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "nothing left on Fly"
    );
    rt.block_on(sim.shutdown());
}

/// A step that panics midway still deletes the workspace, and the failure message
/// shows neither the token nor the password.
#[test]
fn a_failing_step_still_tears_down_and_redacts_the_secrets() {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(sim_config(), "127.0.0.1:0"))
        .expect("sim");
    let target = Target::sim(&sim.base_url());
    let home = Home::new();
    let swarm = Swarm::new(&home, &target, &rt);
    let name = unique_name();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _teardown = Teardown {
            swarm: &swarm,
            name: name.clone(),
            armed: true,
        };
        let created = swarm.json(&["create", &name]);
        let password = text(&created["password"]);
        swarm.secrets.borrow_mut().push(password.clone());
        assert_eq!(sim.stats().apps, 1, "made on the sim");
        // A step that fails with the password in its output (swarm echoes the bad name).
        swarm.json(&["show", &password]);
        password
    }));
    let message = failed
        .expect_err("the step failed")
        .downcast::<String>()
        .expect("a message");
    assert!(message.contains("`swarm show"), "{message}");
    assert!(message.contains("[redacted]"), "{message}");
    let password = swarm.secrets.borrow().last().cloned().expect("password");
    assert!(!message.contains(&password), "the password is redacted");
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes),
        (0, 0, 0),
        "torn down while the panic unwound"
    );
    rt.block_on(sim.shutdown());
}
