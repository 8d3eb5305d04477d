//! A private PostgreSQL for one test, set up exactly like the dev stack's (same script), that the
//! test may crash (`pg_ctl stop -m immediate`) and start again without disturbing anyone else.

use crate::broker::{free_port, run_stack_script, stack_script};

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
        run_stack_script(self.dir.path(), ("BL_PG_PORT", self.port), args);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let args = ["stop-pg", "immediate"];
        let _ = stack_script(self.dir.path(), ("BL_PG_PORT", self.port), &args).output();
    }
}
