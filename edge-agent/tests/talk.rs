//! Talk-down against real GStreamer: camsim cameras with an ONVIF backchannel (which record what
//! they hear), a stand-in for the gateway's talk audio (RTSP, Opus), and the box's `talk` module in
//! between. What a camera heard is checked by its frequency.

mod talk_support;

use bl_proto::CameraId;
use bl_proto::command::{StartTalk, TalkOutput};
use bl_proto::token::MediaToken;
use bl_service::secret::Secret;
use edge_agent::talk::{Talk, TalkConfig, TalkError, TalkStatus};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use talk_support::*;

const TOKEN: &str = "tok-abc.def";
const PASSWORD: &str = "s3cret-pw";

/// Every log line of this test binary, for the credentials check.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let b = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Capture(b.clone()))
            .init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cam(id: &str) -> CameraId {
    CameraId::new(id).unwrap()
}

/// The camera's main URL with credentials put in (camsim does not check them).
fn with_password(url: &str) -> Secret {
    Secret::new(url.replace("rtsp://", &format!("rtsp://admin:{PASSWORD}@")))
}

fn start_talk(camera: &str, source: &TalkSource, output: TalkOutput) -> StartTalk {
    StartTalk {
        camera_id: cam(camera),
        pull_url: source.pull_url(camera),
        token: MediaToken::new(TOKEN),
        output,
    }
}

fn talk_config(text: &str) -> TalkConfig {
    #[derive(serde::Deserialize)]
    struct File {
        talk: TalkConfig,
    }
    toml::from_str::<File>(text).unwrap().talk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_voice_reaches_the_cameras_speaker_and_a_new_start_replaces_it() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let server = camsim(&[("k1", true)], dir.path());
    let url = with_password(&server.url("k1", camsim::Stream::Main));
    let talk = Talk::new(vec![(cam("k1"), Some(url))], None);
    let first = TalkSource::start("k1", TOKEN, 700.0, false);

    let status = talk
        .start(&start_talk("k1", &first, TalkOutput::Backchannel))
        .await
        .expect("talk starts");
    assert!(
        matches!(status, TalkStatus::Connecting | TalkStatus::Talking),
        "{status:?}"
    );
    let d = dir.path().to_path_buf();
    let heard = move || {
        recordings(&d, "k1")
            .first()
            .map(|p| wav_samples(p).len())
            .unwrap_or(0)
    };
    let h = heard.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "2 s of talk at the camera", || {
            h() >= 16_000
        })
    })
    .await
    .unwrap();
    assert_eq!(talk.status(&cam("k1")), Some(TalkStatus::Talking));

    // A second start while talking: the new voice replaces the first in the same camera session.
    let second = TalkSource::start("k1", TOKEN, 450.0, false);
    let before = heard();
    talk.start(&start_talk("k1", &second, TalkOutput::Backchannel))
        .await
        .expect("the source is replaced");
    let h = heard.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "2 s of the second voice", || {
            h() >= before + 16_000
        })
    })
    .await
    .unwrap();
    talk.stop(&cam("k1")).await;
    assert_eq!(talk.status(&cam("k1")), None);

    // Stopped: the camera's session is torn down and its recording stops growing.
    let files = recordings(dir.path(), "k1");
    assert_eq!(files.len(), 1, "one camera session throughout: {files:?}");
    let settled = heard();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(heard(), settled, "nothing is recorded after stop");

    let samples = wav_samples(&files[0]);
    let first_part = &samples[4000..12_000]; // skip the start, where the voice begins
    let last_part = &samples[samples.len() - 12_000..samples.len() - 4000];
    let f1 = peak_frequency(first_part, 8000, 300, 1000, 1);
    let f2 = peak_frequency(last_part, 8000, 300, 1000, 1);
    assert!(f1.abs_diff(700) <= 3, "first voice heard at {f1} Hz");
    assert!(f2.abs_diff(450) <= 3, "second voice heard at {f2} Hz");
    let p700 = tone_power(first_part, 8000, 700.0);
    assert!(
        p700 > 100.0 * tone_power(first_part, 8000, 1500.0),
        "the tone dominates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_without_a_backchannel_answers_camera_has_no_speaker() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let server = camsim(&[("plain", false)], dir.path());
    let source = TalkSource::start("plain", TOKEN, 700.0, false);
    let talk = Talk::new(
        vec![
            (
                cam("plain"),
                Some(with_password(&server.url("plain", camsim::Stream::Main))),
            ),
            (cam("nourl"), None),
        ],
        None,
    );

    let e = talk
        .start(&start_talk("plain", &source, TalkOutput::Backchannel))
        .await
        .unwrap_err();
    assert!(matches!(e, TalkError::NoSpeaker(_)), "{e:?}");
    assert!(e.to_string().contains("camera has no speaker"), "{e}");
    assert_eq!(e.code(), "unsupported");
    assert_eq!(talk.status(&cam("plain")), None);

    let e = talk
        .start(&start_talk("nourl", &source, TalkOutput::Backchannel))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("camera has no speaker"), "{e}");
    let e = talk
        .start(&start_talk("nourl", &source, TalkOutput::Speaker))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("box has no speaker"), "{e}");
    let e = talk
        .start(&start_talk("other", &source, TalkOutput::Backchannel))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unknownCamera");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boxs_own_speaker_plays_the_operators_voice() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("speaker.raw");
    let config = talk_config(&format!(
        "[talk]\nspeaker = \"audio/x-raw,format=S16LE,rate=8000,channels=1 ! filesink location={}\"\n",
        out.display()
    ));
    let talk = Talk::new(vec![(cam("k2"), None)], Some(&config));
    let source = TalkSource::start("k2", TOKEN, 600.0, false);
    talk.start(&start_talk("k2", &source, TalkOutput::Speaker))
        .await
        .expect("talk starts");
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "2 s at the speaker", || {
            std::fs::metadata(&o).map(|m| m.len()).unwrap_or(0) >= 32_000
        })
    })
    .await
    .unwrap();
    assert_eq!(talk.status(&cam("k2")), Some(TalkStatus::Talking));
    talk.stop(&cam("k2")).await;
    let bytes = std::fs::read(&out).unwrap();
    let samples: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let f = peak_frequency(&samples[4000..12_000], 8000, 300, 1000, 1);
    assert!(f.abs_diff(600) <= 3, "heard at {f} Hz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_hat_episode_plays_the_synthesised_warning_at_the_cameras_speaker() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let server = camsim(&[("k3", true)], dir.path());
    let config = talk_config(&format!(
        "[talk]\npremises_kind = \"schoolCanteen\"\ncache_dir = \"{}\"\n\
         [[talk.message]]\nid = \"wear-hat-zh\"\ntext = \"请戴好厨师帽，注意食品安全。\"\n\
         [[talk.warning]]\nkind = \"noChefHat\"\nmessage = \"wear-hat-zh\"\npremises = [\"schoolCanteen\"]\n",
        dir.path().join("cache").display()
    ));
    let url = with_password(&server.url("k3", camsim::Stream::Main));
    let talk = Talk::new(vec![(cam("k3"), Some(url))], Some(&config));
    let t = talk.clone();
    tokio::task::spawn_blocking(move || t.prepare_messages())
        .await
        .unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "synthesised ahead of time: {cached:?}");

    // Directly, as `playMessage` does: played to its end.
    let played = talk.play(&cam("k3"), "wear-hat-zh").await.expect("played");
    assert_eq!(played.output, TalkOutput::Backchannel);
    let files = recordings(dir.path(), "k3");
    assert_eq!(files.len(), 1, "{files:?}");
    let samples = wav_samples(&files[0]);
    let secs = samples.len() as f64 / 8000.0;
    assert!(
        (1.0..10.0).contains(&secs),
        "a short sentence: {secs:.2} s recorded"
    );
    assert!(rms(&samples) > 300.0, "not silent: rms {}", rms(&samples));

    let e = talk.play(&cam("k3"), "no-such").await.unwrap_err();
    assert_eq!(e.code(), "unknownMessage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_credentials_and_talk_tokens_never_reach_the_logs() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let server = camsim(&[("k4", true)], dir.path());
    let source = TalkSource::start("k4", TOKEN, 700.0, false);
    let talk = Talk::new(
        vec![
            (
                cam("k4"),
                Some(with_password(&server.url("k4", camsim::Stream::Main))),
            ),
            // Nobody listens there: the error must not quote the URL either.
            (
                cam("gone"),
                Some(with_password("rtsp://127.0.0.1:9/cam/gone")),
            ),
        ],
        None,
    );
    talk.start(&start_talk("k4", &source, TalkOutput::Backchannel))
        .await
        .unwrap();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "talk at the camera", || {
            !recordings(&d, "k4").is_empty()
        })
    })
    .await
    .unwrap();
    talk.stop(&cam("k4")).await;
    let e = talk
        .start(&start_talk("gone", &source, TalkOutput::Backchannel))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "cameraOffline", "{e}");
    let error = e.to_string();
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("talk"), "the talk logged something");
    for text in [&logged, &error] {
        assert!(!text.contains(PASSWORD), "a camera password leaked: {text}");
        assert!(!text.contains(TOKEN), "a talk token leaked: {text}");
    }
}
