//! The warm pool: fill, list, drain.

use anyhow::Context as _;

use crate::Failure;
use crate::output::Output;
use crate::settings::Settings;
use crate::workspaces::Workspaces;

/// `pool fill`'s region and size: flags, else env or `[pool]` in the config file.
pub fn pool_fill_target(
    settings: &Settings,
    args: &crate::cli::PoolFillArgs,
) -> Result<(String, u32), Failure> {
    let region = args
        .region
        .clone()
        .or_else(|| settings.pool_region.value.clone())
        .unwrap_or_else(|| settings.region.value.clone());
    let size = args.size.or(settings.pool_size.value).ok_or_else(|| {
        Failure::usage(
            "invalid size: pool fill needs a size: give --size N (1 to 50), or set `size` under [pool] in the config file (or SWARM_POOL_SIZE)".to_owned(),
        )
    })?;
    Ok((region, size))
}

pub async fn pool(
    backend: &Workspaces,
    out: &Output,
    settings: &Settings,
    args: crate::cli::PoolArgs,
) -> Result<(), Failure> {
    match args.action {
        crate::cli::PoolAction::Fill(fill) => {
            let (region, size) = pool_fill_target(settings, &fill)?;
            let bar = out.spinner(format!("filling the pool in {region} to {size} slot(s)"));
            let result = backend.local("pool")?.app.pool_fill(&region, size).await;
            bar.finish_and_clear();
            let filled = result?;
            if out.json {
                out.json(&filled)?;
                return Ok(());
            }
            out.line(format!(
                "Pool in {}: {} ready slot(s) (asked for {}); {} made now.",
                filled.region,
                filled.ready,
                filled.size,
                filled.created.len()
            ));
            pool_table(out, &filled.pool)
        }
        crate::cli::PoolAction::List => {
            let listing = backend.local("pool")?.app.pool_list().await?;
            if out.json {
                out.json(&listing)?;
                return Ok(());
            }
            if listing.slots.is_empty() {
                out.note("The pool is empty. Fill it with `swarm pool fill --region R --size N`.");
                return Ok(());
            }
            pool_table(out, &listing)
        }
        crate::cli::PoolAction::Drain => {
            let bar = out.spinner("draining the pool");
            let result = backend.local("pool")?.app.pool_drain().await;
            bar.finish_and_clear();
            let drained = result?;
            if out.json {
                out.json(&drained)?;
                return Ok(());
            }
            out.line(format!(
                "Pool drained: removed {} slot(s){}.",
                drained.removed.len(),
                if drained.removed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", drained.removed.join(", "))
                }
            ));
            Ok(())
        }
    }
}

fn pool_table(out: &Output, listing: &swarm::PoolListing) -> Result<(), Failure> {
    let rows = listing
        .slots
        .iter()
        .map(|view| {
            let slot = &view.slot;
            vec![
                slot.app.clone(),
                slot.state.to_string(),
                slot.region.clone(),
                format!(
                    "{} GB {}",
                    slot.volume_size_gb,
                    slot.volume_id.as_deref().unwrap_or("-")
                ),
                slot.ips
                    .iter()
                    .map(|ip| ip.address.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                // The slot machine's image, prepared on the volume's host ("-": cold).
                slot.warmed_image.clone().unwrap_or_else(|| "-".to_owned()),
                slot.machine
                    .as_deref()
                    .map_or_else(|| "none".to_owned(), |id| format!("{id} (stopped)")),
                view.monthly_cost_usd.to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "app",
            "state",
            "region",
            "volume",
            "ips",
            "warm image",
            "machine",
            "per month",
        ],
        rows,
    )
    .context("writing the pool list")?;
    out.line(format!(
        "{} ready; about {} a month in all (stopped slots pay no CPU or memory). Prices: {}.",
        listing.ready, listing.monthly_cost_usd, listing.prices_source
    ));
    Ok(())
}
