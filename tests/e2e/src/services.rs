//! Real backing services for the regional data plane, each a throwaway instance on a
//! free loopback port: PostgreSQL 15 with pgvector (a fresh cluster from `initdb`).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::proc::Proc;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// uid/gid of the `postgres` account: the server refuses to run as root.
fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().ok()?, f[3].parse().ok()?))
}

fn as_postgres(cmd: &mut Command) {
    // SAFETY: getuid is async-signal-safe.
    if unsafe { libc::getuid() } == 0 {
        let (uid, gid) = postgres_ids().expect("a postgres account (apt install postgresql-15)");
        cmd.uid(uid).gid(gid);
    }
}

/// A PostgreSQL cluster of its own, removed on drop.
pub struct Postgres {
    pub proc: Proc,
    pub port: u16,
    dir: PathBuf,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = std::env::temp_dir().join(format!("meridian-pg-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        if let (0, Some((uid, gid))) = (unsafe { libc::getuid() }, postgres_ids()) {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.join("data");
        let mut init = Command::new(format!("{PG_BIN}/initdb"));
        init.args(["-D", data.to_str().unwrap(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]).stdout(Stdio::null()).stderr(Stdio::null());
        as_postgres(&mut init);
        assert!(init.status().expect("initdb runs").success(), "initdb failed");
        let port = free_port();
        let log = Proc::log_path("postgres");
        let mut cmd = Command::new(format!("{PG_BIN}/postgres"));
        cmd.args(["-D", data.to_str().unwrap(), "-p", &port.to_string(), "-k", dir.to_str().unwrap()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_postgres(&mut cmd);
        // SAFETY: prctl is async-signal-safe; the server dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("postgres starts");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log_copy = log.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(&log_copy).ok();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(f) = f.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                if line.contains("database system is ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("postgres did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()));
        Postgres { proc: Proc::from_child(child, format!("postgres://postgres@127.0.0.1:{port}/postgres"), log), port, dir }
    }

    /// A database owned by a new, non-superuser login role (row-level security binds it),
    /// with pgvector installed. Returns the role's connection URL.
    pub async fn app_database(&self, name: &str) -> String {
        use sqlx::Executor;
        let admin = sqlx::PgPool::connect(&self.proc.url).await.expect("superuser connects");
        admin.execute(format!("CREATE ROLE {name} LOGIN").as_str()).await.unwrap();
        admin.execute(format!("CREATE DATABASE {name} OWNER {name}").as_str()).await.unwrap();
        admin.close().await;
        let db = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)).await.unwrap();
        db.execute("CREATE EXTENSION IF NOT EXISTS vector").await.expect("pgvector is installed");
        db.close().await;
        format!("postgres://{name}@127.0.0.1:{}/{name}", self.port)
    }
}
