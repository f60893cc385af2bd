//! Acceptance 4: the password shown once appears nowhere else — not in the sim's
//! machine config, not in the store files, not in any log line at TRACE — and the
//! `HASHED_PASSWORD` the machine got verifies against it, also through the sim's
//! login page.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{assert_sim_empty, start_sim, swarm_at};
use swarm::CreateOptions;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn find_hashed_password(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(hash) = map.get("HASHED_PASSWORD").and_then(|v| v.as_str()) {
                return Some(hash.to_owned());
            }
            map.values().find_map(find_hashed_password)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_hashed_password),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_is_shown_once_and_only_its_hash_leaves() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&sim.base_url(), &db).await;
    let created = swarm
        .create(&CreateOptions {
            name: "secret".to_owned(),
            ..CreateOptions::default()
        })
        .await
        .expect("create");
    let password = created.password.expose().to_owned();
    assert!(password.len() >= 20);
    // Shown once: in the serialised result (for --json), never in Debug.
    assert!(
        serde_json::to_string(&created)
            .expect("json")
            .contains(&password)
    );
    assert!(!format!("{created:?}").contains(&password));

    swarm.health("secret").await.expect("health");
    swarm.stop("secret", false).await.expect("stop");
    swarm.start("secret").await.expect("start");

    // The machine got only the hash, and it verifies.
    let world = sim.world();
    let world_text = world.to_string();
    assert!(
        !world_text.contains(&password),
        "plaintext password in the sim's world"
    );
    let hash = find_hashed_password(&world).expect("HASHED_PASSWORD in the machine config");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(swarm::password::verify(&password, &hash));
    assert!(!swarm::password::verify("not-the-password", &hash));

    // Through the sim's proxy: code-server's login accepts it, and only it.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let login = |candidate: String| {
        http.post(format!("{}/login", sim.base_url()))
            .header(reqwest::header::HOST, "secret.fly.dev")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("password={candidate}"))
            .send()
    };
    let accepted = login(password.clone()).await.expect("login");
    assert!(accepted.status().is_redirection(), "{}", accepted.status());
    assert!(
        accepted
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_some(),
        "a session cookie"
    );
    let refused = login("wrong-password-123456".to_owned())
        .await
        .expect("login");
    assert!(refused.headers().get(reqwest::header::SET_COOKIE).is_none());
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Incorrect password")
    );

    swarm.delete("secret").await.expect("delete");
    assert_sim_empty(&sim);

    // The store (and its WAL) never saw it.
    swarm.store().close().await;
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read store file");
        assert!(
            !bytes
                .windows(password.len())
                .any(|window| window == password.as_bytes()),
            "plaintext password in {}",
            path.display()
        );
    }
    // No log line at any level carries it, although TRACE was on and logged plenty.
    let logs = String::from_utf8(capture.0.lock().expect("logs").clone()).expect("utf8 logs");
    assert!(
        logs.lines().count() > 10,
        "expected TRACE output, got: {logs}"
    );
    assert!(
        logs.contains("journal step committed"),
        "swarm's own debug lines are captured"
    );
    assert!(!logs.contains(&password), "plaintext password in the logs");
    sim.shutdown().await;
}
