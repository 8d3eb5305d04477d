//! `dispatch --config FILE`: runs the control plane. `dispatch demo-data --config FILE` fills an
//! empty registry with demo data and exits. `dispatch audit-verify --config FILE` checks the audit
//! log's hash chain and exits non-zero when it is broken. `dispatch openapi [FILE]` writes the API's
//! OpenAPI document (no config needed).
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "dispatch",
    about = "Brightline control plane: registry, auth, incidents, dispatch API"
)]
struct Cli {
    /// The TOML config file (see dispatch/README.md).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Also create demo data when the registry is empty (as `demo_data = true`).
    #[arg(long)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create demo premises, cameras, teams, rosters and users in an empty registry, then exit.
    DemoData,
    /// Walk the audit log's hash chain: print OK with the count and last hash, or the first broken
    /// row and why; exit 1 when broken.
    AuditVerify,
    /// Write the OpenAPI document of the API to FILE (`make schemas` keeps
    /// docs/reference/openapi.json current), or to stdout; needs no config.
    Openapi { file: Option<PathBuf> },
    /// Check drill scenario files (YAML): print each one's id and title, or the first problem
    /// with file, line and field; exit 1 when one is refused. Needs no config.
    DrillCheck { files: Vec<PathBuf> },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bl_service::telemetry::init("dispatch");
    let cli = Cli::parse();
    if let Some(Command::Openapi { file }) = &cli.command {
        let to = file
            .as_ref()
            .map_or("stdout".into(), |f| f.display().to_string());
        return dispatch::api::openapi::write(file.as_deref())
            .with_context(|| format!("cannot write the OpenAPI document to {to}"));
    }
    if let Some(Command::DrillCheck { files }) = &cli.command {
        let mut refused = false;
        for file in files {
            let name = file.display().to_string();
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
            match dispatch::drill::scenario::parse(&name, &text) {
                Ok(s) => println!("{name}: ok: {} ({})", s.id, s.title),
                Err(e) => {
                    println!("{e}");
                    refused = true;
                }
            }
        }
        std::process::exit(i32::from(refused));
    }
    let path = cli.config.context("--config FILE is required")?;
    let mut config = dispatch::config::Config::load(&path)?;
    match cli.command {
        Some(Command::DemoData) => {
            let pool = dispatch::db::connect(&config.database).await?;
            dispatch::db::migrate(&pool).await?;
            dispatch::import_towns(&pool, &config).await?;
            dispatch::load_demo(&pool, &config).await?;
            Ok(())
        }
        Some(Command::AuditVerify) => {
            let pool = dispatch::db::connect(&config.database).await?;
            let outcome = dispatch::audit::verify::run(&pool).await?;
            println!("{}", outcome.report());
            if let dispatch::audit::verify::Outcome::Broken { .. } = outcome {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Openapi { .. } | Command::DrillCheck { .. }) => {
            unreachable!("answered before the config is read")
        }
        None => {
            config.demo_data |= cli.demo;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {} (field `listen`)", config.listen))?;
            let token = bl_service::shutdown::on_signals();
            dispatch::run(config, listener, token.cancelled_owned()).await?;
            Ok(())
        }
    }
}
