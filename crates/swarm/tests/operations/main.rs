//! Issue #6 against fly-sim in-process: password rotation, resize, image update and
//! rollback, region move, snapshots and restore — the change lands on Fly, the rest
//! of the machine config is kept, files on the volume survive (or come back from the
//! snapshot), nothing is left behind, and invalid input changes nothing.

#[path = "../common/mod.rs"]
mod common;
mod password_and_resize;
mod regions_and_snapshots;
mod versions;

use fly_sim::SimHandle;
use serde_json::Value;
use swarm::CreateOptions;

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        env: [("GIT_AUTHOR_NAME".to_owned(), "Alice".to_owned())].into(),
        ..CreateOptions::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http")
}

/// True when the sim's code-server login accepts `password` for `app`.
async fn login_accepts(sim: &SimHandle, app: &str, password: &str) -> bool {
    let response = http()
        .post(format!("{}/login", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("password={password}"))
        .send()
        .await
        .expect("login");
    response.status().is_redirection()
        && response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_some()
}

async fn put_file(sim: &SimHandle, app: &str, path: &str, body: &str) {
    let response = http()
        .put(format!("{}/__sim/fs/{path}", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .body(body.to_owned())
        .send()
        .await
        .expect("put file");
    assert_eq!(response.status(), 204);
}

async fn get_file(sim: &SimHandle, app: &str, path: &str) -> Option<String> {
    let response = http()
        .get(format!("{}/__sim/fs/{path}", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .send()
        .await
        .expect("get file");
    if response.status() == 200 {
        Some(response.text().await.expect("body"))
    } else {
        None
    }
}

fn without(mut config: Value, paths: &[&[&str]]) -> Value {
    for path in paths {
        let (last, parents) = path.split_last().expect("path");
        let mut at = &mut config;
        for key in parents {
            at = &mut at[*key];
        }
        if let Some(map) = at.as_object_mut() {
            map.remove(*last);
        }
    }
    config
}

/// A live machine on the sim: (id, region, state).
type SimMachine = (String, String, String);
/// A live volume on the sim: (id, region).
type SimVolume = (String, String);

/// The live machines and volumes of `app` on the sim.
fn placement(sim: &SimHandle, app: &str) -> (Vec<SimMachine>, Vec<SimVolume>) {
    let world = sim.world();
    let Some(found) = world["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app))
    else {
        return (Vec::new(), Vec::new());
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let listed = |key: &str| -> Vec<Value> {
        match &found[key] {
            Value::Array(items) => items.clone(),
            Value::Object(map) => map.values().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let machines = listed("machines")
        .iter()
        .filter(|m| !matches!(m["state"].as_str(), Some("destroyed" | "destroying")))
        .map(|m| (text(&m["id"]), text(&m["region"]), text(&m["state"])))
        .collect();
    let volumes = listed("volumes")
        .iter()
        .filter(|v| {
            !matches!(
                v["state"].as_str(),
                Some("destroyed" | "destroying" | "pending_destroy")
            )
        })
        .map(|v| (text(&v["id"]), text(&v["region"])))
        .collect();
    (machines, volumes)
}
