//! A private PostgreSQL for one test, set up exactly like the dev stack's (same script), that the
//! test may crash (`pg_ctl stop -m immediate`) and start again without disturbing anyone else.

use crate::broker::free_port;
use crate::stack::repo_root;
use std::process::Command;

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    /// `postgres://brightline:…@127.0.0.1:PORT/brightline`
    pub url: String,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::broker::set_mode_755(dir.path());
        let mut pg = PrivatePostgres {
            dir,
            port: free_port(),
            url: String::new(),
        };
        pg.script(&["start-pg"]);
        let password = std::fs::read_to_string(pg.dir.path().join("pg/password"))
            .expect("the database password")
            .trim()
            .to_owned();
        pg.url = format!(
            "postgres://brightline:{password}@127.0.0.1:{}/brightline",
            pg.port
        );
        pg
    }

    /// Stops the server the hard way: no checkpoint, connections cut, as in a crash.
    pub fn crash(&self) {
        self.script(&["stop-pg", "immediate"]);
    }

    /// Starts it again on the same port (it recovers from its WAL).
    pub fn start_again(&self) {
        self.script(&["start-pg"]);
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(repo_root().join("deploy/dev/stack.sh"))
            .args(args)
            .env("BL_DATA", self.dir.path())
            .env("BL_PG_PORT", self.port.to_string())
            .output()
            .expect("run deploy/dev/stack.sh");
        assert!(
            out.status.success(),
            "stack.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("deploy/dev/stack.sh"))
            .args(["stop-pg", "immediate"])
            .env("BL_DATA", self.dir.path())
            .env("BL_PG_PORT", self.port.to_string())
            .output();
    }
}
