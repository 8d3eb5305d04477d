//! `camsim`: serve simulated RTSP cameras, or print a scenario's ground truth.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use camsim::config::{self, Config, FileConfig};
use camsim::{Scenario, Stream};

/// Simulated kitchen and pharmacy cameras over RTSP, with ground truth.
#[derive(Debug, Parser)]
#[command(name = "camsim", version)]
struct Cli {
    /// TOML config file (listen, truth_dir, [[camera]] tables).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, overrides the config file (port 0 picks a free port). Default 127.0.0.1:8554.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Write `{camera}.jsonl` ground truth here, overrides the config file.
    #[arg(long, value_name = "DIR")]
    truth_dir: Option<PathBuf>,
    /// Add a camera: `ID=SCENARIO_PATH[,h264|h265][,pcmu|pcma|aac]` (the last: an audio track on
    /// the main stream). Repeatable.
    #[arg(long = "camera", value_name = "ID=SCENARIO_PATH[,h265][,pcma]")]
    cameras: Vec<String>,
    /// Serve the HTTP control endpoint (play a scene on a camera) here, overrides the config file.
    #[arg(long, value_name = "ADDR")]
    control: Option<String>,
    /// Scenario files the control endpoint can play, overrides the config file.
    #[arg(long, value_name = "DIR")]
    scenes_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the ground truth of one loop of SCENARIO as JSON lines, without serving.
    Truth {
        scenario: PathBuf,
        /// Camera id written in the header. Default: the scenario file's stem.
        #[arg(long)]
        id: Option<String>,
    },
    /// Write frame N of SCENARIO as a PPM picture to OUT, without serving.
    Frame {
        scenario: PathBuf,
        n: u64,
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    bl_service::telemetry::init("camsim");
    if let Some(Command::Truth { scenario, id }) = &cli.command {
        let s = Scenario::load(scenario)?;
        let id = id.clone().unwrap_or_else(|| {
            scenario
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let stdout = std::io::stdout().lock();
        camsim::truth::write_jsonl(std::io::BufWriter::new(stdout), &id, &s)?;
        return Ok(());
    }
    if let Some(Command::Frame { scenario, n, out }) = &cli.command {
        let frame = camsim::Renderer::new(Scenario::load(scenario)?).render(*n);
        std::fs::write(out, frame.to_ppm()).with_context(|| format!("write {}", out.display()))?;
        return Ok(());
    }
    let (config, control) = build_config(&cli)?;
    let own: Vec<Scenario> = config.cameras.iter().map(|c| c.scenario.clone()).collect();
    let mut server = camsim::serve(config)?;
    let control_url = match control {
        Some((addr, dir)) => {
            let mut scenes = match &dir {
                Some(d) => config::load_scenes(d)?,
                None => Vec::new(),
            };
            for s in own {
                if !scenes.iter().any(|o| o.name == s.name) {
                    scenes.push(s);
                }
            }
            Some(server.start_control(addr, scenes)?)
        }
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "camsim listening on rtsp://{}", url_host(&server))?;
        for id in server.cameras() {
            writeln!(
                out,
                "camera {id}: {} (sub {})",
                server.url(id, Stream::Main),
                server.url(id, Stream::Sub)
            )?;
        }
        if let Some(url) = &control_url {
            writeln!(out, "camsim control on {url}")?;
        }
        out.flush()?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let token = bl_service::shutdown::on_signals();
        token.cancelled().await;
    });
    server.stop();
    Ok(())
}

/// `host:port` of the server as clients reach it.
fn url_host(server: &camsim::Server) -> String {
    let url = server.url("x", Stream::Main);
    url.trim_start_matches("rtsp://")
        .trim_end_matches("/cam/x")
        .to_string()
}

/// The control endpoint's address and scenes folder, when asked for.
type ControlSpec = Option<(std::net::SocketAddr, Option<PathBuf>)>;

fn build_config(cli: &Cli) -> anyhow::Result<(Config, ControlSpec)> {
    let (mut control, mut scenes_dir) = (None, None);
    let mut config = match &cli.config {
        Some(path) => {
            let fc: FileConfig = bl_service::config::load(path)?;
            let base = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            control = fc.control.clone();
            scenes_dir = fc.scenes_dir.as_ref().map(|d| base.join(d));
            Config::from_file(fc, base)
                .with_context(|| format!("config file {}", path.display()))?
        }
        None => Config {
            listen: config::parse_listen("--listen", config::DEFAULT_LISTEN)?,
            truth_dir: None,
            cameras: Vec::new(),
        },
    };
    let control = cli.control.clone().or(control);
    let scenes_dir = cli.scenes_dir.clone().or(scenes_dir);
    if let Some(l) = &cli.listen {
        config.listen = config::parse_listen("--listen", l)?;
    }
    if let Some(d) = &cli.truth_dir {
        config.truth_dir = Some(d.clone());
    }
    for spec in &cli.cameras {
        config.cameras.push(config::parse_camera_spec(spec)?);
    }
    config.validate()?;
    let control = match control {
        Some(addr) => Some((config::parse_listen("control", &addr)?, scenes_dir)),
        None => None,
    };
    Ok((config, control))
}
