//! One wiremock test per endpoint. Every request the client sends is validated against
//! Fly's spec by `FlyMock::finish`; every fixture against the response schema.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod apps;
mod auth_and_errors;
#[path = "../common/mod.rs"]
mod common;
mod ips;
mod leases;
mod logs;
mod machines;
mod secrets;
mod volumes;

use serde_json::json;

const APP: &str = "ws-demo";
const MID: &str = "1857156b526dd8";
const VID: &str = "vol_r1p6pln1k9m9j7zr";

fn machine_path(rest: &str) -> String {
    format!("/v1/apps/{APP}/machines/{MID}{rest}")
}

#[test]
fn the_request_checker_catches_a_misspelt_field() {
    // Guards the guard: the strict spec check used by `FlyMock::finish` must fail here.
    let spec = fly_spec::Spec::load();
    let body = json!({"name": APP, "org_slug": "personal", "orgslug": "typo"});
    assert!(spec.check_request("POST", "/v1/apps", &body).is_err());
    let machine = json!({"config": {"image": "x", "services": [{"autostop": "sometimes"}]}});
    assert!(
        spec.check_request("POST", &format!("/v1/apps/{APP}/machines"), &machine)
            .is_err()
    );
}
