//! Real backing services for the regional data plane, each a throwaway instance on a
//! free loopback port: PostgreSQL 15 with pgvector (a fresh cluster from `initdb`), Redis
//! (Debian's redis-server), and an S3-compatible server that verifies SigV4 (s3s-fs).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::proc::{die_with_parent, Proc};

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
        die_with_parent(&mut cmd);
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

/// Waits (up to 15 s) until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, proc: &Proc, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start: {}", proc.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_quiet(mut cmd: Command, name: &str) -> Proc {
    die_with_parent(&mut cmd);
    let log = Proc::log_path(name);
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f).spawn().unwrap_or_else(|e| panic!("{name} starts: {e}"));
    Proc::from_child(child, String::new(), log)
}

/// A Redis server of its own (no persistence unless `dir` is given), killed on drop.
pub struct Redis {
    pub proc: Proc,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        let proc = spawn_quiet(cmd, "redis");
        wait_for_port(port, &proc, "redis-server");
        Redis { proc, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server and starts an empty one on the same port (no persistence: every
    /// key, stream and pending entry is gone).
    pub fn restart_empty(&mut self) {
        let _ = Command::new("kill").arg("-9").arg(self.proc.pid().to_string()).status();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.proc = spawn_quiet(cmd, "redis");
        wait_for_port(self.port, &self.proc, "redis-server");
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// An S3-compatible server (s3s-fs) with one access key, storing under a temp dir.
pub struct S3 {
    pub proc: Proc,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    dir: PathBuf,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl S3 {
    pub fn start() -> S3 {
        let dir = std::env::temp_dir().join(format!("meridian-s3-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let (access_key, secret_key) = (format!("AK{:x}", rand::random::<u32>()), format!("{:x}", rand::random::<u128>()));
        let exe = std::env::var_os("MERIDIAN_S3S_FS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo/bin/s3s-fs"));
        let mut cmd = Command::new(exe);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", &access_key, "--secret-key", &secret_key]).arg(&dir);
        let proc = spawn_quiet(cmd, "s3s-fs");
        wait_for_port(port, &proc, "s3s-fs");
        S3 { proc, port, access_key, secret_key, dir }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every stored object's path under the server's root (for at-rest assertions).
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out)
                } else {
                    out.push(p)
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        out
    }
}

/// Where `scripts/test` unpacked the embedding model (`MERIDIAN_MODELS`).
pub fn models_dir() -> PathBuf {
    std::env::var_os("MERIDIAN_MODELS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/meridian/models"))
}
