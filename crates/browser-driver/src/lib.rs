//! A small WebDriver client for the dashboard's browser tests and its first-render
//! benchmark: Debian's `chromium` driven by its `chromedriver` (W3C WebDriver over
//! loopback HTTP). Test support: it panics with a message on anything unexpected. Finds them through `SWARM_CHROMIUM` /
//! `SWARM_CHROMEDRIVER` or `PATH`; under CI (`CI=true`, or `SWARM_BROWSER_REQUIRED`
//! as `.ci/run` sets) a missing browser fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// `chromedriver` running, with the browser it drives.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    chromium: PathBuf,
    _profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Driver {
    /// Starts chromedriver; `None` (with a message saying how to install the browser)
    /// when it is missing outside CI. Under CI a missing browser is a failure.
    pub async fn start() -> Option<Self> {
        let chromium = find(
            "SWARM_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = find("SWARM_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let how = "the browser tests need Chromium and its driver: `apt-get install chromium chromium-driver` \
                (or set SWARM_CHROMIUM and SWARM_CHROMEDRIVER)";
            let required = std::env::var("CI").as_deref() == Ok("true")
                || std::env::var_os("SWARM_BROWSER_REQUIRED").is_some();
            assert!(!required, "{how}");
            eprintln!("SKIPPED: {how}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let this = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            chromium,
            _profiles: tempfile::tempdir().expect("profile dir"),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = this
                .http
                .get(format!("{}/status", this.base))
                .send()
                .await
                .ok()
                .and_then(|response| response.status().is_success().then_some(()));
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(this)
    }

    /// What `chromium --version` says (e.g. "Chromium 131.0.6778.85 built on Debian").
    pub fn browser_version(&self) -> Option<String> {
        let out = Command::new(&self.chromium)
            .arg("--version")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// A new headless browser window (its own profile, so its own cookies).
    pub async fn session(&self, profile: &str) -> Browser {
        let profile = self._profiles.path().join(profile);
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--window-size=1280,1000",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer = post(&self.http, &format!("{}/session", self.base), &capabilities).await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Browser {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
        }
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = http.post(url).json(body).send().await.expect("webdriver");
    let answer: Value = response.json().await.expect("webdriver JSON");
    if answer["value"]["error"].is_string() {
        panic!("webdriver {url}: {}", answer["value"]);
    }
    answer.get("value").cloned().unwrap_or(answer)
}

/// One browser window.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn command(&self, path: &str, body: Value) -> Value {
        post(&self.http, &format!("{}{path}", self.base), &body).await
    }

    pub async fn goto(&self, url: &str) {
        self.command("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.command("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Waits until `script` returns something truthy (the page updates by itself:
    /// this reads it until the condition holds, or fails after [`WAIT`]).
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.js(script, json!([])).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText", json!([])).await;
                panic!(
                    "waited {WAIT:?} for {what}; the page says:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn element(&self, css: &str) -> String {
        let found = self
            .command("/element", json!({ "using": "css selector", "value": css }))
            .await;
        found[ELEMENT].as_str().expect("element id").to_owned()
    }

    /// Types `text` into the element (keys such as Enter as WebDriver's code points).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(&format!("/element/{id}/clear"), json!({}))
            .await;
        self.command(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(&format!("/element/{id}/click"), json!({}))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.command("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// A PNG of the page as a person sees it, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let answer = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .expect("screenshot");
        let answer: Value = answer.json().await.expect("screenshot JSON");
        let png = base64_decode(answer["value"].as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write the screenshot");
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// Standard base64 (what WebDriver's screenshot is encoded in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[cfg(test)]
#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
