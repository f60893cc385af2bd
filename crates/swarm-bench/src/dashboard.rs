//! S8 (issue 20): the dashboard's list page over N workspaces, signed in as an admin
//! (who sees all of them): its weight with its assets, and how long the controller
//! takes to answer it in full (the server's part of the first render).

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
    let token = swarm::controller::create_token(swarm.store(), "bench-admin", true).await?;
    let controller = swarm::controller::Controller::new(swarm);
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
        "## S8 (issue 20): the dashboard's list over {n} workspaces, as an admin, {runs} runs"
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
