//! End-to-end tests live in `tests/`; this crate holds only what they need to run the project's
//! binaries as processes.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;

/// This package's folder in the checkout whose tests run. Cargo and nextest give a test process its
/// package's `CARGO_MANIFEST_DIR` when they run it; the compile-time value is only a fallback: it is
/// the folder this library was compiled in, which in a target directory seeded from another
/// checkout is *that* checkout (an e2e test then ran main's edge-agent instead of this one's).
fn checkout() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Builds `bin` of `package` with the cargo that runs the tests (a no-op when it is fresh) and
/// copies it into `dir`, so that the test runs the binary of this checkout even when another
/// checkout shares the target directory and rebuilds it meanwhile. Panics with cargo's words.
pub fn binary(package: &str, bin: &str, dir: &Path) -> PathBuf {
    // One build at a time within a test process; cargo itself serialises across processes.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--message-format=json")
        .current_dir(checkout())
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo built no executable named {bin}"));
    let copy = dir.join(bin);
    // A hard link costs no space and still keeps this inode when cargo later replaces the file (it
    // writes a new one rather than rewriting in place); a copy is the fallback across filesystems.
    std::fs::hard_link(&built, &copy)
        .or_else(|_| std::fs::copy(&built, &copy).map(drop))
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), copy.display()));
    copy
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// camsim serving its night kitchen (rodents from 5 s, 24 s and 70 s of each 90 s loop) as `camera`.
pub fn night_kitchen(camera: &str) -> camsim::Server {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../camsim/scenarios/kitchen-night.toml");
    camsim::serve(camsim::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        truth_dir: None,
        cameras: vec![camsim::CameraConfig::new(
            camera,
            camsim::Scenario::load(&path).unwrap(),
        )],
    })
    .unwrap()
}

/// `edge-agent keygen`: the device key in `dir`, its public half as printed.
pub fn keygen(agent: &Path, dir: &Path) -> String {
    let out = Command::new(agent)
        .arg("keygen")
        .arg(dir.join("device.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
