//! Child processes of a test: spawned, awaited until ready, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the built binaries are: `MERIDIAN_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`,
/// else the workspace's `target/debug`.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("MERIDIAN_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
        target.join("debug")
    });
    let p = dir.join(name);
    assert!(p.exists(), "{} is not built: run `cargo build --workspace --bins` (or scripts/test)", p.display());
    p
}

/// The child gets SIGTERM when the test process dies, even one killed without running
/// destructors.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// A child process killed when dropped.
pub struct Proc {
    pub(crate) child: Child,
    pub url: String,
    pub stderr_path: PathBuf,
    /// A working directory of the process's own, removed with it.
    pub(crate) scratch: Option<PathBuf>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Proc {
    /// Spawns `cmd` and waits (up to 15 s) for the line containing `listening on http://ADDR`.
    pub fn spawn(mut cmd: Command, name: &str) -> Proc {
        die_with_parent(&mut cmd);
        let stderr_path = Proc::log_path(name);
        let err = std::fs::File::create(&stderr_path).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(err).stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("{name} did not report readiness; stderr: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default())
        });
        Proc { child, url, stderr_path, scratch: None }
    }

    /// A process already started and known to be ready.
    pub fn from_child(child: Child, url: String, stderr_path: PathBuf) -> Proc {
        Proc { child, url, stderr_path, scratch: None }
    }

    /// A fresh file for a child's stderr.
    pub fn log_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join("meridian-e2e");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(format!("{name}-{}.log", rand::random::<u32>()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let ok = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "could not signal {}", self.pid());
    }

    /// Waits up to `within` for the process to exit; returns whether it did.
    pub fn exited_within(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

pub fn start_mock() -> Proc {
    start_mock_with(&[])
}

/// The mock with extra arguments (e.g. `--jwks FILE`).
pub fn start_mock_with(args: &[&str]) -> Proc {
    let mut c = Command::new(bin("meridian-mock"));
    c.args(["--listen", "127.0.0.1:0"]).args(args);
    Proc::spawn(c, "mock")
}
