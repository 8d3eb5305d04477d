//! `edge-agent`: the camera box's one binary.

use anyhow::Context;
use bl_service::secret::Secret;
use clap::{Parser, Subcommand};
use edge_agent::command::live::{LivePushes, StreamUrls};
use edge_agent::command::snapshot::Snapshots;
use edge_agent::command::{self, Commands};
use edge_agent::config::Config;
use edge_agent::evidence::spool::Spool;
use edge_agent::evidence::upload::{self, UploadConfig};
use edge_agent::evidence::{Recorder, Rolls};
use edge_agent::ingest::health::Thresholds;
use edge_agent::ingest::pipeline::FrameFormat;
use edge_agent::ingest::{self, Frame, HealthBoard, IngestContext};
use edge_agent::outbox::Outbox;
use edge_agent::remote::{self, AppliedRevision};
use edge_agent::talk::Talk;
use edge_agent::talk::center::Fetcher;
use edge_agent::uplink::{self, UplinkConfig};
use edge_agent::watch::{self, EventSink, EvidenceLink};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Brightline edge agent: watches cameras, reports violations, loses nothing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent until SIGTERM.
    Run {
        #[arg(long, default_value = "edge.toml")]
        config: PathBuf,
    },
    /// Check a config file and say what is wrong with it, without starting anything.
    CheckConfig {
        #[arg(long, default_value = "edge.toml")]
        config: PathBuf,
    },
    /// Enrol this box at the center with the one-time code from an administrator: makes (or keeps)
    /// the device key in DIR, stores the broker password there and prints the head of edge.toml.
    Enrol(EnrolArgs),
    /// Run detection over camsim scenarios and print precision, recall, time to alarm and CPU per
    /// frame against their ground truth.
    Detect(DetectArgs),
    /// Make the device key that signs evidence (kept if it exists): OUT (private, 0600) and
    /// OUT.pub. `enrol` makes it too; this is for a box set up by hand.
    Keygen {
        #[arg(default_value = "device.key")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct EnrolArgs {
    /// dispatch's address as the box reaches it, e.g. `https://dispatch.example:8443`.
    #[arg(long)]
    dispatch: String,
    /// This box's edge id, as the administrator registered it.
    #[arg(long)]
    edge_id: String,
    /// The one-time enrolment code. Prefer --code-file: a code on the command line shows in the
    /// process list.
    #[arg(
        long,
        conflicts_with = "code_file",
        required_unless_present = "code_file"
    )]
    code: Option<String>,
    /// A file holding the one-time enrolment code.
    #[arg(long)]
    code_file: Option<PathBuf>,
    /// The box's folder for its device key and broker password (made 0700 if missing).
    #[arg(long)]
    dir: PathBuf,
}

#[derive(clap::Args)]
struct DetectArgs {
    /// A camsim scenario file; repeat for several.
    #[arg(long, required = true)]
    scenario: Vec<PathBuf>,
    /// Frames per second given to the detectors.
    #[arg(long, default_value_t = 5.0)]
    fps: f64,
    /// Runs per scenario, each with another noise seed.
    #[arg(long, default_value_t = 1)]
    loops: u64,
    /// Also cut the first scenario, with its rodents removed, into this many empty clips and count
    /// false alarms.
    #[arg(long, default_value_t = 0)]
    empty_clips: usize,
    /// Length of an empty clip, seconds.
    #[arg(long, default_value_t = 10.0)]
    clip_secs: f64,
    /// Override the infrared sensor noise of night scenarios.
    #[arg(long)]
    ir_noise: Option<f64>,
    /// Override the infrared flicker of night scenarios.
    #[arg(long)]
    ir_flicker: Option<f64>,
    /// Where the hat/mask detector's person boxes come from on scenarios with noChefHat/noMask
    /// rules: `model` (yolov3-tiny), `truth` (camsim's boxes: scores the head stage alone) or `both`.
    #[arg(long, default_value = "both", value_parser = ["model", "truth", "both"])]
    persons: String,
    /// Width of the frames the hat/mask detector gets (a main stream is 1280).
    #[arg(long, default_value_t = 1280)]
    person_width: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bl_service::telemetry::init("edge-agent");
    match Cli::parse().command {
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            c.mqtt_password()?;
            c.device_key()?;
            println!("{}: ok (edge {})", config.display(), c.edge_id);
            Ok(())
        }
        Command::Run { config } => run(Config::load(&config)?).await,
        Command::Enrol(args) => enrol(args).await,
        Command::Detect(args) => detect(args),
        Command::Keygen { out } => {
            let (key, new) = edge_agent::enrol::device_key(&out)?;
            eprintln!(
                "device key {} ({})",
                out.display(),
                if new { "new" } else { "kept: it exists" }
            );
            println!("{}", bl_proto::keys::encode_public(&key.verifying_key()));
            Ok(())
        }
    }
}

async fn enrol(args: EnrolArgs) -> anyhow::Result<()> {
    let edge_id = bl_proto::EdgeId::new(args.edge_id).context("--edge-id")?;
    let code = match (&args.code, &args.code_file) {
        (Some(code), _) => Secret::new(code.clone()),
        (None, Some(file)) => Secret::from_file(file)
            .with_context(|| format!("cannot read the code file {}", file.display()))?,
        (None, None) => anyhow::bail!("give --code or --code-file"),
    };
    let done = edge_agent::enrol::enrol(&args.dispatch, &edge_id, &code, &args.dir).await?;
    eprintln!(
        "edge {} enrolled; device key {} ({}), broker password in {}",
        done.edge_id,
        done.key_file.display(),
        if done.new_key { "new" } else { "kept" },
        done.password_file.display()
    );
    print!("{}", done.config_lines());
    Ok(())
}

fn detect(args: DetectArgs) -> anyhow::Result<()> {
    use edge_agent::detect::score::{self, ScoreOptions};
    for (i, path) in args.scenario.iter().enumerate() {
        let mut scenario = camsim::Scenario::load(path)?;
        use camsim::scenario::ViolationKind as Kind;
        let people = scenario
            .rules
            .iter()
            .any(|r| matches!(r, Kind::NoChefHat | Kind::NoMask));
        if people {
            detect_people(&scenario, &args)
                .with_context(|| format!("scoring {}", path.display()))?;
        }
        // A scene may carry both kinds (the night kitchen: rodents and a cook without a hat):
        // its rodents are scored too, with the empty clips asked for.
        if people && !scenario.rules.contains(&Kind::Rodent) {
            continue;
        }
        if let Some(ir) = scenario.infrared.as_mut() {
            ir.noise = args.ir_noise.unwrap_or(ir.noise);
            ir.flicker = args.ir_flicker.unwrap_or(ir.flicker);
        }
        for l in 0..args.loops {
            let mut s = scenario.clone();
            s.seed = s.seed.wrapping_add(l * 1000);
            let options = ScoreOptions {
                detector_fps: args.fps,
                empty_clips: if i == 0 && l == 0 {
                    args.empty_clips
                } else {
                    0
                },
                clip_secs: args.clip_secs,
                ..ScoreOptions::default()
            };
            let report = score::run_scenario(s, &options)
                .with_context(|| format!("scoring {}", path.display()))?;
            if args.loops > 1 {
                println!("loop {l} (seed +{})", l * 1000);
            }
            println!("{report}");
        }
    }
    Ok(())
}

/// Scores the hat/mask detector on a day scenario, with each person stage asked for.
fn detect_people(scenario: &camsim::Scenario, args: &DetectArgs) -> anyhow::Result<()> {
    use edge_agent::detect::score_person::{self, PersonScoreOptions, PersonSource};
    use edge_agent::detect::yolo::{self, YoloConfig};
    let model = PersonSource::Model(YoloConfig::in_dir(
        yolo::models_dir().join(yolo::DEFAULT_MODEL_DIR),
    ));
    let sources = match args.persons.as_str() {
        "model" => vec![model],
        "truth" => vec![PersonSource::Truth],
        _ => vec![model, PersonSource::Truth],
    };
    for persons in sources {
        let options = PersonScoreOptions {
            detector_fps: args.fps,
            width: args.person_width,
            ..PersonScoreOptions::new(persons)
        };
        println!(
            "{}",
            score_person::run_scenario(scenario.clone(), &options)?
        );
    }
    Ok(())
}

async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = bl_service::shutdown::on_signals();
    let outbox = Outbox::open(&config.outbox.path, config.outbox.quota_bytes).await?;
    // End events held for their clips when the agent stopped: no clip is coming now.
    let released = outbox.release_all_held().await?;
    if released > 0 {
        tracing::warn!(
            events = released,
            "end events held for clips when the agent stopped go out without them"
        );
    }
    let depth = outbox.depth().await?;
    tracing::info!(
        edge = %config.edge_id,
        outbox = %config.outbox.path.display(),
        queued = depth.messages,
        "edge-agent started"
    );
    let applied_revision = AppliedRevision::default();
    let (config_payloads, config_rx) = tokio::sync::watch::channel(Vec::new());
    let (command_payloads, command_rx) = tokio::sync::mpsc::channel(64);
    let uplink = UplinkConfig {
        commands: Some(command_payloads),
        config_payloads,
        applied_revision: applied_revision.clone(),
        edge_id: config.edge_id.clone(),
        host: config.mqtt.host.clone(),
        port: config.mqtt.port,
        password: config.mqtt_password()?,
        keep_alive: config.keep_alive(),
        window: config.mqtt.window,
        state_interval: Duration::from_secs(config.mqtt.state_interval_secs),
        data_dir: config
            .outbox
            .path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let board = HealthBoard::default();
    let (frames, frames_rx) = tokio::sync::mpsc::channel::<Frame>(16);
    // Colour frames for the person detector (issue 3): a short queue, ingest drops when it is full.
    let (colour_frames, colour_rx) = tokio::sync::mpsc::channel::<Frame>(2);
    let colour_wanted = ingest::ColourWanted::default();
    let (evidence, snapshots, evidence_tasks) = match evidence(&config, &outbox, &shutdown).await? {
        Some((link, snapshots, tasks)) => (Some(link), Some(snapshots), tasks),
        None => (None, None, Vec::new()),
    };
    let context = IngestContext {
        recorders: evidence
            .as_ref()
            .map(|e| e.recorders.clone())
            .unwrap_or_default(),
        edge: config.edge_id.clone(),
        outbox: outbox.clone(),
        board: board.clone(),
        frames,
        format: FrameFormat::default(),
        thresholds: Thresholds::default(),
        colour: Some(ingest::ColourFeed {
            frames: colour_frames,
            wanted: colour_wanted.clone(),
            formats: config.colour_formats(),
        }),
    };
    let cameras: Vec<_> = config
        .camera_sources()?
        .into_iter()
        .map(|camera| ingest::spawn(camera, context.clone(), shutdown.clone()))
        .collect();
    drop(context);
    tracing::info!(cameras = cameras.len(), "cameras started");
    let watches = watch::from_config(&config)?;
    let (updates, updates_rx) = tokio::sync::mpsc::channel(1);
    let talk = Talk::new(config.backchannel_sources()?, config.talk.as_ref());
    let fetcher = match (&config.center, config.center_key()?, &config.talk) {
        (Some(center), Some(key), Some(t)) => Some(Fetcher::new(
            &center.url,
            config.edge_id.clone(),
            key,
            &t.cache_dir,
        )),
        _ => None,
    };
    tokio::spawn(remote::run(
        config.edge_id.clone(),
        config.camera.iter().map(|c| c.id.clone()).collect(),
        applied_revision,
        config_rx,
        updates,
        Some(remote::CenterVoice {
            talk: talk.clone(),
            fetcher,
        }),
        shutdown.clone(),
    ));
    let (sightings, _) = tokio::sync::broadcast::channel(64);
    // Text messages are spoken by espeak-ng now, not when an alarm needs them.
    let prepared = talk.clone();
    tokio::task::spawn_blocking(move || prepared.prepare_messages());
    tokio::spawn(command::run(
        Commands {
            edge: config.edge_id.clone(),
            outbox: outbox.clone(),
            cameras: config.camera.iter().map(|c| c.id.clone()).collect(),
            live: LivePushes::new(
                config
                    .live_sources()?
                    .into_iter()
                    .map(|(id, sub, main)| (id, StreamUrls { sub, main }))
                    .collect(),
                Duration::from_secs(config.live.max_push_secs),
                shutdown.clone(),
            ),
            snapshots,
            sightings: sightings.clone(),
            talk: talk.clone(),
        },
        command_rx,
        shutdown.clone(),
    ));
    watch::spawn(
        config.edge_id.clone(),
        EventSink {
            outbox: outbox.clone(),
            evidence,
            sightings: Some(sightings),
            talk: Some(talk),
        },
        watches,
        config.utc_offset_minutes,
        watch::Frames {
            grey: frames_rx,
            colour: colour_rx,
            colour_wanted,
        },
        updates_rx,
        shutdown.clone(),
    );
    uplink::run(uplink, outbox, board, shutdown)
        .await
        .context("uplink stopped")?;
    for camera in cameras {
        let _ = camera.await;
    }
    // The evidence worker finishes open clips and sends the end events waiting for them (into the
    // outbox: they leave at the next start). Bounded: what it cannot finish stays held on disk.
    for task in evidence_tasks {
        if tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .is_err()
        {
            tracing::warn!(
                "evidence did not finish in time; held end events go out at the next start"
            );
        }
    }
    tracing::info!("edge-agent stopped");
    Ok(())
}

/// With `[evidence]`: a recorder per camera, the evidence worker and the uploader, running; returns
/// the link the detection worker sends its events through, what snapshots on command need, and the
/// tasks to wait for at shutdown.
async fn evidence(
    config: &Config,
    outbox: &Outbox,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<(EvidenceLink, Snapshots, Vec<tokio::task::JoinHandle<()>>)>> {
    let Some(e) = &config.evidence else {
        tracing::info!("no [evidence]: events go without snapshots or clips");
        return Ok(None);
    };
    let key = config.device_key()?.expect("[evidence] is set");
    let spool = Spool::open(&e.spool_dir, outbox.clone(), config.edge_id.clone(), key).await?;
    let rolls = Rolls {
        pre_ms: i64::from(e.pre_roll_secs) * 1000,
        post_ms: i64::from(e.post_roll_secs) * 1000,
    };
    let recorders: HashMap<_, _> = config
        .camera
        .iter()
        .map(|c| {
            let recorder = Recorder::new(e.pre_roll_bytes, rolls, e.max_clip_bytes);
            (c.id.clone(), recorder)
        })
        .collect();
    let (events, events_rx) = tokio::sync::mpsc::channel(64);
    let snapshots = Snapshots {
        spool: spool.clone(),
        recorders: recorders.clone(),
    };
    let worker = tokio::spawn(edge_agent::evidence::worker::run(
        config.edge_id.clone(),
        outbox.clone(),
        spool,
        recorders.clone(),
        events_rx,
        shutdown.clone(),
    ));
    let uploader = tokio::spawn(upload::run(
        UploadConfig {
            url: e.url.clone(),
            retry_max: Duration::from_secs(e.retry_max_secs),
            spool_dir: e.spool_dir.clone(),
        },
        outbox.clone(),
        shutdown.clone(),
    ));
    tracing::info!(url = %e.url, spool = %e.spool_dir.display(), "evidence upload on");
    Ok(Some((
        EvidenceLink { events, recorders },
        snapshots,
        vec![worker, uploader],
    )))
}
