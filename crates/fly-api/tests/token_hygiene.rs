//! The token never shows up in Debug, Display, error messages or traces (TRACE level,
//! including the `log` records of reqwest and hyper).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{CANARY, FlyMock};
use fly_api::{FlyClient, RetryPolicy, Token};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("only this test installs a subscriber");
        captured
    })
}

#[tokio::test]
async fn canary_token_never_leaks() {
    let output = captured();
    let fly = FlyMock::start().await;
    fly.on(
        "GET",
        "/v1/apps/ws-demo",
        200,
        json!({"id": "a", "name": "ws-demo"}),
    )
    .await;
    fly.on(
        "GET",
        "/v1/apps/missing",
        404,
        json!({"error": "Could not find App \"missing\""}),
    )
    .await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path("/v1/apps/flaky"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
            .expect(2),
    )
    .await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"errors": [{"message": "denied"}]})),
            )
            .expect(1),
    )
    .await;
    let client = fly.client_with(|b| {
        b.retry(RetryPolicy {
            max_retries: 1,
            initial_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
    });

    let mut texts = vec![
        format!("{client:?}"),
        format!("{:?}", Token::new(CANARY)),
        format!("{:?}", FlyClient::builder().token(Token::new(CANARY))),
    ];
    client.apps().get("ws-demo").await.unwrap();
    for err in [
        client.apps().get("missing").await.unwrap_err(),
        client.apps().get("flaky").await.unwrap_err(),
        client.ips().list("ws-demo").await.unwrap_err(),
    ] {
        texts.push(format!("{err}"));
        texts.push(format!("{err:?}"));
    }
    // A bad token (not a valid header) must not be echoed in the config error either.
    let bad = FlyClient::builder()
        .token(Token::new(format!("{CANARY}\nX")))
        .build();
    let bad_inner = FlyClient::builder()
        .token(Token::new(format!("fm2_a\u{7f}{CANARY}")))
        .build()
        .unwrap_err();
    texts.push(format!("{:?}", bad.map(|_| ())));
    texts.push(format!("{bad_inner} {bad_inner:?}"));
    fly.finish().await;

    let traces = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
    assert!(
        traces.contains("retrying Fly API call"),
        "the subscriber captured the client's events:\n{traces}"
    );
    assert!(
        traces.contains("TRACE") || traces.contains("DEBUG"),
        "captured at low levels"
    );
    for text in texts.iter().chain([&traces]) {
        assert!(!text.contains(CANARY), "token leaked into: {text}");
        assert!(
            !text.contains("CANARY"),
            "token fragment leaked into: {text}"
        );
    }
}
