//! `media-gateway`: run the gateway, export a case, verify an export offline, make a key.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bl_proto::evidence::Sha256Hex;
use clap::{Parser, Subcommand};
use media_gateway::evidence::export::{self, ExportRequest};
use media_gateway::evidence::verify;
use media_gateway::recording::verify as recording_verify;
use media_gateway::{config, keyfile};

#[derive(Parser)]
#[command(name = "media-gateway", version, about = "Brightline's data plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM/SIGINT (a second signal exits at once).
    Run {
        /// The TOML config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Export stored evidence of a case into a new folder, signed by the gateway key.
    Export {
        /// The TOML config file (for the data folder, node id, signing key and edge keys).
        #[arg(long)]
        config: PathBuf,
        /// The folder to write; must not exist or be empty.
        #[arg(long)]
        out: PathBuf,
        /// The case (incident) id.
        #[arg(long)]
        case: String,
        /// Who asks for the export (operator id); recorded in the manifest.
        #[arg(long)]
        by: String,
        /// A blob to include (repeat for more).
        #[arg(long = "blob", value_name = "SHA256", required = true)]
        blobs: Vec<Sha256Hex>,
    },
    /// Check an export folder, or a recordings folder (`{data_dir}/recordings`, or `data_dir`
    /// itself), without any server; exits 1 and names each mismatch.
    Verify {
        /// The export folder or recordings folder.
        export_dir: PathBuf,
        /// Recordings only: check this camera only (default: every camera in the index).
        #[arg(long)]
        camera: Option<String>,
        /// The gateway public key you trust (file, hex or base64); without it, the key in the
        /// export is used and printed for you to compare.
        #[arg(long)]
        gateway_key: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair: OUT (private, mode 0600) and OUT.pub.
    Keygen {
        /// Where to write the private key.
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("media-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            bl_service::telemetry::init("media-gateway");
            let config = config::load(&config)?;
            runtime()?.block_on(async {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.listen))?;
                let shutdown = bl_service::shutdown::on_signals();
                media_gateway::run(config, listener, shutdown.cancelled_owned()).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Export {
            config,
            out,
            case,
            by,
            blobs,
        } => {
            bl_service::telemetry::init("media-gateway");
            let config = config::load(&config)?;
            let signer = config.signing_key.clone().context(
                "the config has no signing_key_file; make one with `media-gateway keygen` and set it",
            )?;
            runtime()?.block_on(async {
                let store = media_gateway::evidence::backend::open(
                    &config.evidence_store,
                    &config.evidence_dir(),
                )
                .await?;
                let keys = media_gateway::edge_keys(&config);
                let request = ExportRequest {
                    case,
                    created_by: by,
                    blobs,
                    out: out.clone(),
                };
                let manifest = export::export(
                    store.as_ref(),
                    keys.as_ref(),
                    &signer,
                    &config.node_id,
                    request,
                    chrono::Utc::now(),
                )
                .await?;
                tracing::info!(case = %manifest.case, by = %manifest.created_by,
                    blobs = manifest.blobs.len(), out = %out.display(), "evidence exported");
                println!(
                    "exported {} blob(s) of case {} to {}",
                    manifest.blobs.len(),
                    manifest.case,
                    out.display()
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Verify {
            export_dir,
            camera,
            gateway_key,
        } => {
            if let Some(dir) = recording_verify::find_recordings_dir(&export_dir) {
                return Ok(verify_recordings(&dir, camera.as_deref()));
            }
            if camera.is_some() {
                anyhow::bail!(
                    "--camera is for recordings, and {} holds no recording index",
                    export_dir.display()
                );
            }
            let trusted = gateway_key
                .map(|p| keyfile::read_public(&p))
                .transpose()
                .context("--gateway-key")?;
            let report = verify::verify(&export_dir, trusted.as_ref());
            for note in &report.notes {
                println!("note: {note}");
            }
            for problem in &report.problems {
                println!("FAIL {problem}");
            }
            if report.is_intact() {
                println!(
                    "OK {}: manifest signature and {} blob(s) verified",
                    export_dir.display(),
                    report.blobs_ok
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "{} problem(s) in {}",
                    report.problems.len(),
                    export_dir.display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Keygen { out } => {
            let public = keyfile::generate(&out)
                .with_context(|| format!("cannot write a key to {}", out.display()))?;
            println!(
                "private key: {} (keep it secret)\npublic key:  {}.pub = {}",
                out.display(),
                out.display(),
                keyfile::encode_public(&public)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the recordings report; exit 1 on any problem.
fn verify_recordings(dir: &std::path::Path, camera: Option<&str>) -> ExitCode {
    let report = recording_verify::verify(dir, camera);
    print!("{}", report.render(dir));
    if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
