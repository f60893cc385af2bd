//! Bounds computed from the durations the sim actually drew in a run (its draw log),
//! so each measured time is set against what Fly's latency model allowed *that* run.

use fly_sim::{Draw, Knob};

/// The last draw of `knob` whose label satisfies `label` (the successful attempt when
/// a request was repeated).
fn last(draws: &[Draw], knob: Knob, label: impl Fn(&str) -> bool) -> Option<i64> {
    draws
        .iter()
        .rev()
        .find(|d| d.knob == knob && label(&d.label))
        .map(|d| d.model_ms)
}

fn rtt(draws: &[Draw], method_path: &str) -> Option<i64> {
    last(draws, Knob::ApiRtt, |l| l == method_path)
}

/// The critical path of one create of app `app`, in model ms, and its parts:
/// app create (round trip + response), then the longer of
/// volume create → machine create → image preparation → boot, and the IP allocations
/// (which need only the app). The `/wait` round trip overlaps the preparation, so it
/// is not added.
pub fn create(draws: &[Draw], app: &str) -> Option<(i64, String)> {
    let app_ms = rtt(draws, "POST /v1/apps")? + last(draws, Knob::AppCreate, |l| l == app)?;
    let volume = rtt(draws, &format!("POST /v1/apps/{app}/volumes"))?
        + last(draws, Knob::VolumeCreate, |l| l == app)?;
    let machine = rtt(draws, &format!("POST /v1/apps/{app}/machines"))?
        + last(draws, Knob::MachineCreate, |l| l == app)?;
    let prepare = draws.iter().rev().find(|d| {
        matches!(d.knob, Knob::ImagePrepareFirst | Knob::ImagePrepareCached) && !d.label.is_empty()
    })?;
    let boot = last(draws, Knob::Boot, |l| l == prepare.label)?;
    let graphql_rtt = draws
        .iter()
        .filter(|d| d.knob == Knob::ApiRtt && d.label == "POST /graphql")
        .map(|d| d.model_ms)
        .min()
        .unwrap_or(0);
    let ip = draws
        .iter()
        .filter(|d| d.knob == Knob::IpAllocate && d.label == app)
        .map(|d| d.model_ms)
        .max()
        .map_or(0, |ms| ms + graphql_rtt);
    let chain = volume + machine + prepare.model_ms + boot;
    let total = app_ms + chain.max(ip);
    let parts = format!(
        "app {app_ms} + max(volume {volume} + machine {machine} + prepare {} + boot {boot}, ips {ip})",
        prepare.model_ms
    );
    Some((total, parts))
}

/// p50 critical path of one create with the image already prepared in the region.
pub fn create_p50_cached() -> f64 {
    let rtt = Knob::ApiRtt.p50_ms();
    (rtt + Knob::AppCreate.p50_ms())
        + (rtt + Knob::VolumeCreate.p50_ms())
        + (rtt + Knob::MachineCreate.p50_ms())
        + Knob::ImagePrepareCached.p50_ms()
        + Knob::Boot.p50_ms()
}

/// One workspace's Fly ids, to attribute draws.
#[derive(Debug, Clone)]
pub struct Ids {
    pub app: String,
    pub machine: String,
    pub volume: String,
}

/// Stop phase: the slowest workspace's stop round trip + drawn stop time.
pub fn stop(draws: &[Draw], ids: &[Ids]) -> i64 {
    ids.iter()
        .filter_map(|w| {
            let path = format!("POST /v1/apps/{}/machines/{}/stop", w.app, w.machine);
            Some(rtt(draws, &path)? + last(draws, Knob::Stop, |l| l == w.machine)?)
        })
        .max()
        .unwrap_or(0)
}

/// Start phase: the slowest workspace's start round trip + drawn boot.
pub fn start(draws: &[Draw], ids: &[Ids]) -> i64 {
    ids.iter()
        .filter_map(|w| {
            let path = format!("POST /v1/apps/{}/machines/{}/start", w.app, w.machine);
            Some(rtt(draws, &path)? + last(draws, Knob::Boot, |l| l == w.machine)?)
        })
        .max()
        .unwrap_or(0)
}

/// Delete phase, as DESIGN §2 prescribes it (stop, destroy, delete the volume once Fly
/// releases it, delete the app, see it gone): per workspace the drawn stop, destroy,
/// claim hold, volume delete and app delete, plus the round trip of each of those five
/// dependent requests; the slowest workspace.
pub fn delete(draws: &[Draw], ids: &[Ids]) -> i64 {
    ids.iter()
        .filter_map(|w| {
            let m = w.machine.as_str();
            let transitions = last(draws, Knob::Stop, |l| l == m)?
                + last(draws, Knob::Destroy, |l| l == m)?
                + last(draws, Knob::ClaimHold, |l| l == m).unwrap_or(0)
                + last(draws, Knob::VolumeDelete, |l| l == w.volume).unwrap_or(0)
                + last(draws, Knob::AppDelete, |l| l == w.app)?;
            let trips = [
                format!("POST /v1/apps/{}/machines/{m}/stop", w.app),
                format!("DELETE /v1/apps/{}/machines/{m}", w.app),
                format!("DELETE /v1/apps/{}/volumes/{}", w.app, w.volume),
                format!("DELETE /v1/apps/{}", w.app),
            ]
            .iter()
            .map(|p| rtt(draws, p).unwrap_or(0))
            .sum::<i64>()
                + rtt(draws, &format!("GET /v1/apps/{}", w.app)).unwrap_or(0);
            Some(transitions + trips)
        })
        .max()
        .unwrap_or(0)
}
