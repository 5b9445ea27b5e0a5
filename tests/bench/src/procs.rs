//! Child processes of a benchmark: emulators to copy between, and contenders to measure.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::migrate::{AK, REGION, SK};

/// The emulator binary: the one given, or `oss-emulator` beside this executable.
pub fn emulator_path(given: Option<&Path>) -> Result<PathBuf, String> {
    let path = match given {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("oss-emulator"),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "no emulator at {}: build it with `cargo build --release -p oss-emulator`",
            path.display()
        ))
    }
}

/// An emulator in its own process, in memory, killed on drop.
pub struct EmulatorProcess {
    child: Child,
    pub endpoint: String,
}

impl EmulatorProcess {
    pub fn start(bin: &Path) -> Result<Self, String> {
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--access-key-id",
                AK,
                "--access-key-secret",
                SK,
                "--region",
                REGION,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let endpoint = first
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("the emulator printed {first:?} instead of its address"))?
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        Ok(EmulatorProcess { child, endpoint })
    }
}

impl EmulatorProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one measured process used.
pub struct Measured {
    pub elapsed: Duration,
    pub peak_rss: Option<u64>,
    pub cpu: Duration,
    /// Its stdout and stderr, for error messages.
    pub output: String,
}

/// Runs `command` to completion; wall time, peak RSS and CPU time come from the kernel
/// (`wait4`'s rusage), so they are the child's alone.
pub fn measure(mut command: Command) -> Result<Measured, String> {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, zero is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    let output = reader.join().unwrap_or_default();
    if rc != pid {
        return Err(format!("wait4 failed for {command:?}"));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{command:?} failed (status {status}): {output}"));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Measured {
        elapsed,
        peak_rss: Some(usage.ru_maxrss as u64 * 1024),
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        output,
    })
}
