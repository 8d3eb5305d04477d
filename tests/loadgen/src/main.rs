//! `loadgen`: the intake benchmark of `make bench`. Thousands of simulated edges publish detection
//! reports through a private mosquitto (configured like the dev stack's) into a real dispatch
//! process on the dev stack's PostgreSQL. Prints, from one run: mosquitto's own QoS 1 delivery
//! rate, dispatch's intake rate, event latency at a steady offered rate, and dispatch's resident
//! memory under load, with many edges connected, and over a soak.

mod edges;
mod service;
mod watch;

use anyhow::{Context, Result};
use clap::Parser;
use edges::Reporter;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use service::{Broker, Dispatch};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Intake benchmark: simulated edges → mosquitto → dispatch → PostgreSQL")]
struct Args {
    /// The dispatch binary (a release build).
    #[arg(long)]
    dispatch: PathBuf,
    /// Edges that publish reports.
    #[arg(long, default_value_t = 1000)]
    edges: usize,
    /// Reports in each flat-out run (broker alone, then through dispatch).
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Offered reports per second in the latency run and the soak.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of the latency run.
    #[arg(long, default_value_t = 20)]
    latency_secs: u64,
    /// Edges connected in all (publishing edges included) for the memory figure.
    #[arg(long, default_value_t = 10_000)]
    connected: usize,
    /// Length of the soak at `rate` (0: none; the figure is 1800).
    #[arg(long, default_value_t = 0)]
    soak_secs: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stack = bl_test_support::stack::Stack::from_env();
    let broker = bl_test_support::broker::PrivateBroker::start();
    let total = args.connected.max(args.edges);
    edges::add_accounts(&broker.data_dir(), total)?;
    // The reload is asynchronous; the first connects retry below if needed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let host = "127.0.0.1";
    println!(
        "intake benchmark: {} publishing edges, {} reports per flat-out run, private mosquitto on :{}",
        args.edges, args.events, broker.port
    );
    let clients = edges::connect_all(host, broker.port, 0..args.edges).await?;

    let broker_rate = broker_baseline(&broker, &clients, args.events).await?;

    let dir = tempfile_dir()?;
    let dispatch = Dispatch::start(
        &args.dispatch,
        &stack.pg_url,
        Broker {
            port: broker.port,
            service_password: &broker.service_password,
        },
        &dir,
    )
    .await?;
    edges::register(&dispatch.pool, total).await?;
    let premises = edges::premises(&dispatch.pool, args.edges).await?;

    let (intake_rate, rss_load) = flat_out(&dispatch, &clients, args.events).await?;
    let console = watch::open(&dispatch.addr, service::ADMIN_PASSWORD).await?;
    let latency = steady(
        &dispatch,
        &clients,
        &premises,
        &console,
        args.rate,
        args.latency_secs,
    )
    .await?;
    drop(console);

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| mosquitto alone: QoS 1 delivery to one subscriber | {broker_rate:.0} msg/s |");
    println!(
        "| dispatch intake: reports stored in PostgreSQL (flat out) | {intake_rate:.0} events/s ({:.0} % of the broker) |",
        100.0 * intake_rate / broker_rate
    );
    println!(
        "| report `at` → its row's `received_at` (its transaction's start) at {:.0}/s offered, p50 / p99 | {:.1} ms / {:.1} ms |",
        latency.offered,
        latency.stored.0 * 1000.0,
        latency.stored.1 * 1000.0
    );
    println!(
        "| report `at` → incident message on the admin's WebSocket at {:.0}/s offered, p50 / p99 | {:.1} ms / {:.1} ms ({} of {} reports seen, {} resyncs) |",
        latency.offered,
        latency.console.0 * 1000.0,
        latency.console.1 * 1000.0,
        latency.seen,
        latency.sent,
        latency.resyncs
    );
    println!("| dispatch resident memory under flat-out load | {rss_load:.0} MiB |");
    let extra = edges::connect_all(host, broker.port, args.edges..total).await?;
    for (i, c) in extra.iter().enumerate() {
        c.publish(
            format!("bl/v1/edge/{}/state", edges::edge_id(args.edges + i)),
            QoS::AtLeastOnce,
            true,
            edges::state(args.edges + i),
        )
        .await?;
    }
    wait_count(
        &dispatch,
        "SELECT count(*) FROM edge_status",
        extra.len() as i64,
    )
    .await?;
    let rss_connected = dispatch.rss_mib();

    println!("| dispatch resident memory with {total} edges connected | {rss_connected:.0} MiB |");
    if args.soak_secs > 0 {
        soak(&dispatch, &clients, args.rate, args.soak_secs).await?;
    }
    drop(extra);
    dispatch.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "bl-loadgen-{}",
        &bl_test_support::stack::random_token()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Every client sends its share of `total` reports as fast as the broker takes them.
async fn publish_flat_out(clients: &[AsyncClient], total: usize) -> Result<()> {
    let per = total.div_ceil(clients.len());
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let n = per.min(total.saturating_sub(i * per));
        tasks.push(tokio::spawn(async move {
            let mut r = Reporter::new(i);
            for _ in 0..n {
                r.send(&client).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// mosquitto's own rate: the same reports to one QoS 1 subscriber (the dispatch account, as
/// dispatch subscribes), nothing behind it.
async fn broker_baseline(
    broker: &bl_test_support::broker::PrivateBroker,
    clients: &[AsyncClient],
    total: usize,
) -> Result<f64> {
    let mut options = MqttOptions::new("bench-subscriber", "127.0.0.1", broker.port);
    options.set_credentials(&broker.service_user, &broker.service_password);
    let (sub, mut events) = AsyncClient::new(options, 100);
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::Publish(_)) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
        }
    });
    sub.subscribe("$share/bench/bl/v1/edge/+/events", QoS::AtLeastOnce)
        .await?;
    ready_rx.await.context("subscription")?;
    let start = Instant::now();
    publish_flat_out(clients, total).await?;
    while received.load(Ordering::Relaxed) < total as u64 {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "the subscriber got {} of {total}",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    sub.disconnect().await?;
    Ok(rate)
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await?)
}

async fn wait_count(dispatch: &Dispatch, sql: &str, at_least: i64) -> Result<()> {
    let start = Instant::now();
    while count(&dispatch.pool, sql).await? < at_least {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(900),
            "dispatch did not get there within 15 minutes ({sql}); see {}",
            dispatch.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Reports stored per second with the broker as fast as it goes, and dispatch's peak memory.
async fn flat_out(
    dispatch: &Dispatch,
    clients: &[AsyncClient],
    total: usize,
) -> Result<(f64, f64)> {
    let before = count(&dispatch.pool, "SELECT count(*) FROM edge_events").await?;
    let start = Instant::now();
    publish_flat_out(clients, total).await?;
    let mut peak: f64 = 0.0;
    loop {
        peak = peak.max(dispatch.rss_mib());
        let stored = count(&dispatch.pool, "SELECT count(*) FROM edge_events").await? - before;
        if stored >= total as i64 {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(900),
            "dispatch stored {stored} of {total} in 15 minutes; see {}",
            dispatch.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((total as f64 / start.elapsed().as_secs_f64(), peak))
}

/// Sends `rate` reports per second for `secs`, round-robin over the edges, in 10 ms ticks; returns
/// each report's edge and `at`.
async fn publish_steady(
    clients: &[AsyncClient],
    rate: u64,
    secs: u64,
) -> Result<Vec<(usize, chrono::DateTime<chrono::Utc>)>> {
    let mut reporters: Vec<Reporter> = (0..clients.len()).map(Reporter::new).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut next = 0usize;
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as usize;
        while sent.len() < due {
            let r = &mut reporters[next];
            sent.push((next, r.send(&clients[next]).await?));
            next = (next + 1) % clients.len();
        }
    }
    Ok(sent)
}

/// What the steady run measured (latencies in seconds: p50, p99).
struct Latency {
    offered: f64,
    stored: (f64, f64),
    console: (f64, f64),
    sent: usize,
    seen: usize,
    resyncs: u64,
}

/// At a steady rate: p50 and p99 of report `at` → its row's `received_at`, and of report `at` →
/// the incident message reflecting it on the admin's WebSocket.
async fn steady(
    dispatch: &Dispatch,
    clients: &[AsyncClient],
    premises: &[uuid::Uuid],
    console: &watch::Watch,
    rate: u64,
    secs: u64,
) -> Result<Latency> {
    let before = count(&dispatch.pool, "SELECT count(*) FROM edge_events").await?;
    let from = chrono::Utc::now();
    let sent = publish_steady(clients, rate, secs).await?;
    wait_count(
        dispatch,
        "SELECT count(*) FROM edge_events",
        before + sent.len() as i64,
    )
    .await?;
    let stored: (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d) \
         FROM (SELECT extract(epoch FROM received_at - at)::float8 AS d FROM edge_events WHERE at >= $1) x",
    )
    .bind(from)
    .fetch_one(&dispatch.pool)
    .await?;
    // the last messages are on their way
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent: Vec<_> = sent.into_iter().map(|(i, at)| (premises[i], at)).collect();
    let (seen, resyncs) = {
        let w = console.watched.lock().unwrap();
        (w.seen.clone(), w.resyncs)
    };
    let (mut ws, _missing) = watch::latencies(&sent, &seen);
    Ok(Latency {
        offered: sent.len() as f64 / secs as f64,
        stored,
        console: (
            watch::quantile(&mut ws, 0.5),
            watch::quantile(&mut ws, 0.99),
        ),
        sent: sent.len(),
        seen: ws.len(),
        resyncs,
    })
}

/// Resident memory sampled ten times over a long run at a steady rate.
async fn soak(dispatch: &Dispatch, clients: &[AsyncClient], rate: u64, secs: u64) -> Result<()> {
    println!();
    println!("| soak at {rate}/s: minute | dispatch resident memory |");
    println!("|---|---|");
    let step = (secs / 10).max(1);
    let mut elapsed = 0;
    while elapsed < secs {
        publish_steady(clients, rate, step).await?;
        elapsed += step;
        println!(
            "| {:.1} | {:.0} MiB |",
            elapsed as f64 / 60.0,
            dispatch.rss_mib()
        );
    }
    Ok(())
}
