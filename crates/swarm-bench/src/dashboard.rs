//! S10 (issue 20): the dashboard's list page over N workspaces, signed in as an admin
//! (who sees all of them): its weight with its assets, how long the controller takes
//! to answer it in full, and the first render in headless Chromium (the browser's
//! Paint Timing `first-contentful-paint` and Navigation Timing `loadEventEnd`, both
//! counted from the navigation's start, so they include the answer).

use std::time::Instant;

use swarm::Store;

use crate::cli_runs::{median, ms};
use crate::scenarios::{fill_world_named, open_swarm, percentile};

pub async fn dashboard(n: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("world.json");
    let records = fill_world_named(n, &state, "db").await?;
    let sim = fly_sim::Sim::start(
        fly_sim::SimConfig {
            state_file: Some(state.clone()),
            ..fly_sim::SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let swarm = open_swarm(&sim.base_url(), &dir.path().join("swarm.db")).await?;
    for record in &records {
        swarm.store().insert_workspace(record).await?;
    }
    let token = swarm_controller::create_token(swarm.store(), "bench-admin", true).await?;
    let controller = swarm_controller::Controller::new(swarm);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn({
        let controller = std::sync::Arc::clone(&controller);
        async move {
            controller
                .serve(listener, None, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = sign_in(&http, &base, token.expose()).await?;
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
    };
    let page = get("/").await?.error_for_status()?.bytes().await?;
    anyhow::ensure!(
        page.windows(7).any(|w| w == b"db-0000" || w == b"db-0001"),
        "the list shows the workspaces"
    );
    let script = get("/assets/app.js").await?.bytes().await?.len();
    let style = get("/assets/app.css").await?.bytes().await?.len();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        get("/").await?.error_for_status()?.bytes().await?;
        times.push(ms(started.elapsed()));
    }
    println!(
        "## S10 (issue 20): the dashboard's list over {n} workspaces, as an admin, {runs} runs"
    );
    println!(
        "| HTML bytes | app.js | app.css | total bytes | answer median ms | p95 ms | max ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | {script} | {style} | {} | {:.1} | {:.1} | {:.1} |",
        page.len(),
        page.len() + script + style,
        median(&times),
        percentile(&times, 0.95),
        percentile(&times, 1.0),
    );
    browser_first_render(&base, token.expose(), runs).await;
    let _ = stop.send(());
    served.await??;
    sim.shutdown().await;
    Ok(())
}

/// Signs in through the form as a browser would; the session's `Cookie` header.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let login = http.get(format!("{base}/login")).send().await?;
    let cookie = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
    };
    let login_cookie =
        cookie(&login, "swarm_login").ok_or_else(|| anyhow::anyhow!("no login cookie"))?;
    let html = login.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no CSRF field"))?
        .to_owned();
    let answer = http
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&csrf={csrf}"))
        .send()
        .await?;
    cookie(&answer, "swarm_session")
        .ok_or_else(|| anyhow::anyhow!("sign-in refused: {}", answer.status()))
}

/// Loads the list `runs` times in headless Chromium, signed in through the form, and
/// prints the first contentful paint and the load event's end (medians and p95).
/// Without Chromium and chromedriver it says so and measures nothing.
async fn browser_first_render(base: &str, token: &str, runs: usize) {
    let Some(driver) = browser_driver::Driver::start().await else {
        println!("(no first render: Chromium and chromedriver are not installed)");
        return;
    };
    let page = driver.session("bench").await;
    page.goto(&format!("{base}/login")).await;
    page.type_into("#token", &format!("{token}\u{E007}")).await;
    page.wait_for(
        "the list after sign-in",
        "return document.body.dataset.page === 'list'",
    )
    .await;
    let (mut paint, mut load) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        // `goto` returns once the page has loaded (WebDriver's normal load strategy).
        page.goto(&format!("{base}/")).await;
        let timing = page
            .wait_for(
                "the list's paint timing",
                "const paint = performance.getEntriesByName('first-contentful-paint')[0]; \
                 const nav = performance.getEntriesByType('navigation')[0]; \
                 return paint && nav && nav.loadEventEnd > 0 \
                   ? [paint.startTime, nav.loadEventEnd, document.querySelectorAll('tbody tr').length] : null",
            )
            .await;
        let at = |i: usize| timing[i].as_f64().unwrap_or(f64::NAN);
        paint.push(at(0));
        load.push(at(1));
        assert!(at(2) >= 1.0, "the list rendered no rows");
    }
    page.close().await;
    println!();
    println!(
        "first render in headless Chromium {}, {runs} loads of `/`:",
        chromium_version(&driver)
    );
    println!("| first contentful paint median ms | p95 ms | load event end median ms | p95 ms |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {:.1} | {:.1} | {:.1} | {:.1} |",
        median(&paint),
        percentile(&paint, 0.95),
        median(&load),
        percentile(&load, 0.95),
    );
}

fn chromium_version(driver: &browser_driver::Driver) -> String {
    driver
        .browser_version()
        .unwrap_or_else(|| "(version unknown)".to_owned())
}
