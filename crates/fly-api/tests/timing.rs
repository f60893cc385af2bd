//! Backoff, Retry-After, throttling, wait looping and log following on paused tokio
//! time, with an in-process transport: exact delays and call counts, no real seconds.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fly_api::models::{CreateMachineRequest, LogQuery, MachineState, StopRequest};
use fly_api::{
    Error, FlyClient, RetryPolicy, Token, Transport, TransportRequest, TransportResponse,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use http::HeaderMap;
use serde_json::json;
use tokio::time::Instant;

const APP: &str = "ws-demo";
const MID: &str = "1857156b526dd8";

/// What the fake answers with, in order.
enum Step {
    Status(u16, serde_json::Value),
    StatusWithHeader(u16, &'static str, &'static str),
    /// Blocks like Fly's `/wait` for the requested `timeout`, then 408.
    WaitTimesOut,
    Fail(Error),
}

fn ok(body: serde_json::Value) -> Step {
    Step::Status(200, body)
}

#[derive(Debug, Clone)]
struct Seen {
    at: Duration,
    path: String,
    query: String,
}

#[derive(Debug, Default)]
struct FakeState {
    steps: VecDeque<StepBox>,
    seen: Vec<Seen>,
}

struct StepBox(Step);
impl std::fmt::Debug for StepBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Step")
    }
}

#[derive(Debug, Clone)]
struct Fake {
    start: Instant,
    state: Arc<Mutex<FakeState>>,
}

impl Fake {
    fn new(steps: Vec<Step>) -> Self {
        Fake {
            start: Instant::now(),
            state: Arc::new(Mutex::new(FakeState {
                steps: steps.into_iter().map(StepBox).collect(),
                seen: Vec::new(),
            })),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Milliseconds since start of each call.
    fn times_ms(&self) -> Vec<u128> {
        self.seen().iter().map(|s| s.at.as_millis()).collect()
    }

    fn remaining(&self) -> usize {
        self.state.lock().unwrap().steps.len()
    }
}

fn response(status: u16, body: &serde_json::Value) -> TransportResponse {
    TransportResponse {
        status,
        headers: HeaderMap::new(),
        body: if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        },
    }
}

impl Transport for Fake {
    fn send(
        &self,
        request: TransportRequest,
    ) -> BoxFuture<'static, fly_api::Result<TransportResponse>> {
        let mut state = self.state.lock().unwrap();
        state.seen.push(Seen {
            at: self.start.elapsed(),
            path: request.url.path().to_string(),
            query: request.url.query().unwrap_or_default().to_string(),
        });
        let step = state.steps.pop_front().map(|s| s.0);
        drop(state);
        Box::pin(async move {
            match step {
                None => panic!("unexpected request: {} {}", request.method, request.url),
                Some(Step::Status(status, body)) => Ok(response(status, &body)),
                Some(Step::StatusWithHeader(status, name, value)) => {
                    let mut r = response(status, &json!({"error": "slow down"}));
                    r.headers.insert(name, value.parse().unwrap());
                    Ok(r)
                }
                Some(Step::WaitTimesOut) => {
                    let secs: u64 = request
                        .url
                        .query_pairs()
                        .find(|(k, _)| k == "timeout")
                        .and_then(|(_, v)| v.parse().ok())
                        .expect("wait has a timeout");
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    Ok(response(
                        408,
                        &json!({"error": "deadline_exceeded: machine did not reach state"}),
                    ))
                }
                Some(Step::Fail(err)) => Err(err),
            }
        })
    }
}

fn client(fake: &Fake, policy: RetryPolicy, throttle: bool) -> FlyClient {
    FlyClient::builder()
        .token(Token::new("fm2_test"))
        .machines_base_url("http://fly.test")
        .api_base_url("http://api.fly.test")
        .retry(policy)
        .throttle(throttle)
        .transport(Arc::new(fake.clone()))
        .build()
        .unwrap()
}

fn machine() -> serde_json::Value {
    json!({"id": MID, "state": "started", "region": "ams", "config": {"image": "x"}})
}

fn unavailable() -> Step {
    Step::Status(503, json!({"error": "service unavailable"}))
}

fn exact() -> RetryPolicy {
    RetryPolicy::default().without_jitter()
}

// ---------------------------------------------------------------- retries

#[tokio::test(start_paused = true)]
async fn get_retries_5xx_with_exponential_backoff() {
    let fake = Fake::new(vec![unavailable(), unavailable(), ok(machine())]);
    let started = Instant::now();
    let m = client(&fake, exact(), false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap();
    assert_eq!(m.id, MID);
    assert_eq!(fake.times_ms(), [0, 1000, 3000]);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_and_return_last_error() {
    let fake = Fake::new(vec![
        unavailable(),
        unavailable(),
        unavailable(),
        unavailable(),
    ]);
    let err = client(&fake, exact(), false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    // 1 s, 2 s, 4 s between four attempts.
    assert_eq!(fake.times_ms(), [0, 1000, 3000, 7000]);
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped_at_max_delay() {
    let policy = RetryPolicy {
        max_retries: 6,
        ..exact()
    };
    let fake = Fake::new(
        (0..6)
            .map(|_| unavailable())
            .chain([ok(machine())])
            .collect(),
    );
    client(&fake, policy, false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap();
    // Delays 1, 2, 4, 8, 10, 10 s.
    assert_eq!(
        fake.times_ms(),
        [0, 1000, 3000, 7000, 15_000, 25_000, 35_000]
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_between_half_and_full() {
    let fake = Fake::new(vec![
        unavailable(),
        unavailable(),
        unavailable(),
        ok(machine()),
    ]);
    client(&fake, RetryPolicy::default(), false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap();
    let t = fake.times_ms();
    let gaps: Vec<u128> = t.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, full) in gaps.iter().zip([1000u128, 2000, 4000]) {
        assert!(
            *gap >= full / 2 && *gap <= full,
            "gap {gap} for base {full}: {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_header_is_honoured() {
    let fake = Fake::new(vec![
        Step::StatusWithHeader(429, "retry-after", "5"),
        Step::StatusWithHeader(503, "retry-after", "2"),
        ok(machine()),
    ]);
    client(&fake, exact(), false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap();
    assert_eq!(fake.times_ms(), [0, 5000, 7000]);
}

#[tokio::test(start_paused = true)]
async fn call_counters_see_each_attempt_its_retries_and_429s_by_route_template() {
    let fake = Fake::new(vec![
        Step::StatusWithHeader(429, "retry-after", "1"),
        unavailable(),
        ok(machine()),
    ]);
    let client = client(&fake, exact(), false);
    client.machines(APP).get(MID).await.unwrap();
    let counts = client.call_counters().snapshot();
    let endpoint = "GET /v1/apps/{app}/machines/{machine}".to_owned();
    for (status, expected) in [("429", 1), ("503", 1), ("200", 1)] {
        assert_eq!(
            counts.calls.get(&(endpoint.clone(), status.to_owned())),
            Some(&expected),
            "{counts:?}"
        );
    }
    assert_eq!(counts.retries.get(&endpoint), Some(&2));
    assert_eq!(counts.rate_limited.get(&endpoint), Some(&1));
    // Labels name the route, never the app or machine.
    assert!(
        counts
            .calls
            .keys()
            .all(|(endpoint, _)| !endpoint.contains(APP) && !endpoint.contains(MID)),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_policy_none_makes_one_attempt() {
    let fake = Fake::new(vec![unavailable()]);
    let err = client(&fake, RetryPolicy::none(), false)
        .machines(APP)
        .get(MID)
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn safe_calls_retry_transport_errors_and_timeouts() {
    let fake = Fake::new(vec![
        Step::Fail(Error::Transport {
            message: "connection reset".into(),
            sent: true,
        }),
        Step::Fail(Error::Timeout),
        ok(json!({"ok": true})),
    ]);
    client(&fake, exact(), false)
        .machines(APP)
        .stop(MID, &StopRequest::default(), None)
        .await
        .unwrap();
    assert_eq!(fake.times_ms(), [0, 1000, 3000]);
}

#[tokio::test(start_paused = true)]
async fn creates_are_not_retried_when_they_may_have_been_applied() {
    for failure in [
        unavailable(),
        Step::Status(408, json!({"error": "timeout"})),
        Step::Fail(Error::Timeout),
        Step::Fail(Error::Transport {
            message: "reset after send".into(),
            sent: true,
        }),
    ] {
        let fake = Fake::new(vec![failure]);
        let err = client(&fake, exact(), false)
            .machines(APP)
            .create(&CreateMachineRequest::default())
            .await
            .unwrap_err();
        assert!(err.is_ambiguous(), "{err:?}");
        assert_eq!(fake.seen().len(), 1, "{err:?} must not be retried");
    }
}

#[tokio::test(start_paused = true)]
async fn creates_are_retried_when_certainly_not_applied() {
    let fake = Fake::new(vec![
        Step::Status(429, json!({"error": "rate limited"})),
        Step::Fail(Error::Transport {
            message: "connection refused".into(),
            sent: false,
        }),
        ok(machine()),
    ]);
    let m = client(&fake, exact(), false)
        .machines(APP)
        .create(&CreateMachineRequest::default())
        .await
        .unwrap();
    assert_eq!(m.id, MID);
    assert_eq!(fake.times_ms(), [0, 1000, 3000]);
}

#[tokio::test(start_paused = true)]
async fn ip_allocation_is_not_retried_on_5xx_but_listing_is() {
    let fake = Fake::new(vec![unavailable()]);
    let c = client(&fake, exact(), false);
    let err = c
        .ips()
        .allocate(APP, fly_api::models::IpAddressType::V6, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(fake.seen().len(), 1);

    let fake = Fake::new(vec![
        unavailable(),
        ok(json!({"data": {"app": {"ipAddresses": {"nodes": []}, "sharedIpAddress": null}}})),
    ]);
    let ips = client(&fake, exact(), false).ips().list(APP).await.unwrap();
    assert!(ips.ip_addresses.is_empty());
    assert_eq!(fake.times_ms(), [0, 1000]);
    assert_eq!(fake.seen()[0].path, "/graphql");
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    for status in [400, 401, 404, 409, 412, 422] {
        let fake = Fake::new(vec![Step::Status(status, json!({"error": "no"}))]);
        let err = client(&fake, exact(), false)
            .machines(APP)
            .get(MID)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(fake.seen().len(), 1);
    }
}

// ---------------------------------------------------------------- throttling

#[tokio::test(start_paused = true)]
async fn throttle_spaces_actions_per_machine() {
    let steps = (0..8).map(|_| ok(json!({"ok": true}))).collect();
    let fake = Fake::new(steps);
    let c = client(&fake, RetryPolicy::none(), true);
    let machines = c.machines(APP);
    for _ in 0..5 {
        machines.restart(MID, None).await.unwrap();
    }
    // Burst 3, then 1/s.
    assert_eq!(fake.times_ms(), [0, 0, 0, 1000, 2000]);
    // Another machine and another action are not held up.
    machines.restart("other", None).await.unwrap();
    machines.suspend(MID, None).await.unwrap();
    assert_eq!(&fake.times_ms()[5..], [2000, 2000]);
    assert_eq!(fake.remaining(), 1);
}

#[tokio::test(start_paused = true)]
async fn throttle_allows_get_machine_five_per_second_burst_ten() {
    let fake = Fake::new((0..12).map(|_| ok(machine())).collect());
    let machines = client(&fake, RetryPolicy::none(), true).machines(APP);
    for _ in 0..12 {
        machines.get(MID).await.unwrap();
    }
    let t = fake.times_ms();
    assert_eq!(t[..10], [0; 10]);
    assert_eq!(t[10..], [200, 400]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_the_bucket() {
    let fake = Fake::new((0..6).map(|_| ok(json!({"ok": true}))).collect());
    let machines = client(&fake, RetryPolicy::none(), true).machines(APP);
    let calls = (0..6).map(|_| {
        let m = machines.clone();
        async move { m.restart(MID, None).await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let mut t = fake.times_ms();
    t.sort();
    assert_eq!(t, [0, 0, 0, 1000, 2000, 3000]);
}

#[tokio::test(start_paused = true)]
async fn throttle_off_sends_at_once() {
    let fake = Fake::new((0..6).map(|_| ok(json!({"ok": true}))).collect());
    let machines = client(&fake, RetryPolicy::none(), false).machines(APP);
    for _ in 0..6 {
        machines.restart(MID, None).await.unwrap();
    }
    assert_eq!(fake.times_ms(), [0; 6]);
}

// ---------------------------------------------------------------- wait looping

fn timeouts(fake: &Fake) -> Vec<String> {
    fake.seen()
        .iter()
        .map(|s| {
            s.query
                .split('&')
                .find_map(|kv| kv.strip_prefix("timeout="))
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn wait_for_state_loops_60s_calls_to_the_deadline() {
    let fake = Fake::new(vec![
        Step::WaitTimesOut,
        Step::WaitTimesOut,
        Step::WaitTimesOut,
    ]);
    let started = Instant::now();
    let err = client(&fake, exact(), true)
        .machines(APP)
        .wait_for_state(
            MID,
            &[MachineState::Started],
            None,
            Duration::from_secs(150),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(150));
    assert_eq!(timeouts(&fake), ["60", "60", "30"]);
    assert_eq!(fake.times_ms(), [0, 60_000, 120_000]);
    assert!(fake.seen()[0].query.contains("state=started"));
}

#[tokio::test(start_paused = true)]
async fn wait_for_state_tolerates_transient_failures_with_doubling_backoff() {
    let fake = Fake::new(vec![
        unavailable(),
        Step::Status(429, json!({"error": "rate limited"})),
        Step::Fail(Error::Transport {
            message: "reset".into(),
            sent: true,
        }),
        Step::Status(
            400,
            json!({"error": "machine 1857156b526dd8 currently replaced"}),
        ),
        Step::WaitTimesOut,
        ok(json!({"ok": true, "state": "stopped", "version": "v2"})),
    ]);
    let answer = client(&fake, exact(), false)
        .machines(APP)
        .wait_for_state(
            MID,
            &[MachineState::Stopped],
            Some("v2"),
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(answer.state, Some(MachineState::Stopped));
    // 0.5, 1, 2, 4 s of backoff; then a 60 s server-side wait that ends in 408 and is
    // asked again at once.
    assert_eq!(fake.times_ms(), [0, 500, 1500, 3500, 7500, 67_500]);
    assert!(fake.seen().iter().all(|s| s.query.contains("version=v2")));
    // The /wait calls themselves are never retried by the pipeline: six steps, six calls.
    assert_eq!(fake.remaining(), 0);
}

#[tokio::test(start_paused = true)]
async fn wait_for_state_honours_retry_after_and_deadline() {
    let fake = Fake::new(vec![
        Step::StatusWithHeader(429, "retry-after", "3"),
        unavailable(),
    ]);
    let err = client(&fake, exact(), false)
        .machines(APP)
        .wait_for_state(
            MID,
            &[MachineState::Started],
            None,
            Duration::from_millis(3200),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout));
    // After the 3 s Retry-After, 0.2 s remain: the 1 s backoff is cut to the deadline.
    assert_eq!(fake.times_ms(), [0, 3000]);
    assert_eq!(timeouts(&fake), ["4", "1"]);
}

#[tokio::test(start_paused = true)]
async fn wait_for_state_returns_permanent_errors_at_once() {
    let fake = Fake::new(vec![Step::Status(
        404,
        json!({"error": "machine not found"}),
    )]);
    let err = client(&fake, exact(), false)
        .machines(APP)
        .wait_for_state(MID, &[MachineState::Started], None, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(fake.seen().len(), 1);
}

// ---------------------------------------------------------------- log following

fn log_page(ids: &[&str], next: &str) -> Step {
    let data: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "attributes": {"timestamp": "t", "message": format!("line {id}"),
                                                    "level": "info", "instance": MID, "region": "ams"}}))
        .collect();
    ok(json!({"data": data, "meta": {"next_token": next}}))
}

#[tokio::test(start_paused = true)]
async fn follow_backs_off_on_empty_pages_like_flyctl() {
    let mut steps = vec![log_page(&["1", "2"], "t1")];
    steps.extend((0..8).map(|_| log_page(&[], "")));
    steps.push(log_page(&["3"], "t2"));
    steps.push(log_page(&[], ""));
    steps.push(log_page(&["4"], "t3"));
    let fake = Fake::new(steps);
    let c = client(&fake, RetryPolicy::none(), false);
    let lines: Vec<String> = c
        .logs(APP)
        .follow(LogQuery::default())
        .take(4)
        .map(|e| e.unwrap().message)
        .collect()
        .await;
    assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"]);
    let t = fake.times_ms();
    let gaps: Vec<u128> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // Empty pages: 64 ms doubling to 4096 ms (capped); a full page resets to 64 ms.
    assert_eq!(gaps, [0, 64, 128, 256, 512, 1024, 2048, 4096, 4096, 0, 64]);
    // The token from the last non-empty page is sent back; an empty token keeps it.
    let seen = fake.seen();
    assert!(seen[0].query.contains("next_token=&") || seen[0].query.ends_with("next_token="));
    assert!(seen[1].query.contains("next_token=t1"));
    assert!(seen[9].query.contains("next_token=t1"));
    assert!(seen[10].query.contains("next_token=t2"));
    assert_eq!(seen[0].path, format!("/api/v1/apps/{APP}/logs"));
}

#[tokio::test(start_paused = true)]
async fn follow_ends_on_permanent_error_and_after_ten_failures() {
    let fake = Fake::new(vec![
        log_page(&["1"], "t"),
        Step::Status(404, json!({"error": "app not found"})),
    ]);
    let items: Vec<_> = client(&fake, RetryPolicy::none(), false)
        .logs(APP)
        .follow(LogQuery::default())
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(items[1].as_ref().unwrap_err().is_not_found());

    let fake = Fake::new((0..10).map(|_| unavailable()).collect());
    let items: Vec<_> = client(&fake, RetryPolicy::none(), false)
        .logs(APP)
        .follow(LogQuery::default())
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().status(), Some(503));
    assert_eq!(fake.seen().len(), 10);
}

#[tokio::test(start_paused = true)]
async fn wait_for_state_does_not_spin_on_early_408s() {
    let fake = Fake::new(vec![
        Step::Status(408, json!({"error": "request timeout"})),
        Step::Status(408, json!({"error": "request timeout"})),
        ok(json!({"ok": true, "state": "started"})),
    ]);
    client(&fake, exact(), false)
        .machines(APP)
        .wait_for_state(MID, &[MachineState::Started], None, Duration::from_secs(60))
        .await
        .unwrap();
    // Instant 408s back off like other transient failures.
    assert_eq!(fake.times_ms(), [0, 500, 1500]);
}
