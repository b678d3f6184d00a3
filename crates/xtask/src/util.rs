// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Small helpers shared by the Xen box: the error type, running host commands,
//! a stable content hash for cache keys and progress messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Everything that can go wrong in xtask, as a message naming the operation.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Result with the xtask error.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds an [`Error`] from a format string.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::util::Error(format!($($arg)*)) };
}

/// Returns early with an [`Error`] built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::err!($($arg)*)) };
}

/// Adds context (the operation and the value involved) to io errors.
pub trait Context<T> {
    /// Maps the error to an [`Error`] whose message starts with `what`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

/// Prints a progress line prefixed with the tool name.
pub fn say(msg: impl AsRef<str>) {
    eprintln!("[xen-box] {}", msg.as_ref());
}

/// Shell-like rendering of a command for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`, inheriting stdio, and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let st = cmd
        .status()
        .context(|| format!("cannot start `{}`", show(cmd)))?;
    if !st.success() {
        bail!("`{}` failed with {st}", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr is shown only if it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context(|| format!("cannot start `{}`", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed with {}:\n{}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True if `prog` is found in one of the directories of `$PATH`.
pub fn have_program(prog: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(prog).is_file())
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`,
/// so cache keys survive toolchain updates.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Mixes `data` (and a separator, so that ("ab","c") != ("a","bc")).
    pub fn add(&mut self, data: &[u8]) -> &mut Self {
        for b in data.iter().chain(std::iter::once(&0xffu8)) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// The hash as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Wall-clock stopwatch in seconds.
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Seconds since start.
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// Takes an exclusive lock on `<dir>/.lock`, held until the returned file is
/// dropped: several jobs may share a cache directory and must take turns.
pub fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("cannot lock {}", lock_path.display()))?;
    Ok(lock)
}

/// Creates `dir` and its parents.
pub fn mkdirs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))
}

/// Removes `dir` recursively if it exists.
pub fn rmrf(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(err!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `data` to `path`, creating parent directories.
pub fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    if let Some(p) = path.parent() {
        mkdirs(p)?;
    }
    std::fs::write(path, data).context(|| format!("cannot write {}", path.display()))
}

/// Root of the workspace (two levels above this crate).
///
/// Taken from `CARGO_MANIFEST_DIR` as `cargo run` (hence `cargo xtask`) sets it
/// at run time, not as it was at compile time: cargo does not rebuild a binary
/// whose checkout merely moved, so with a target directory shared between
/// checkouts (as `.ci/run` keeps one) the compile-time path can name another,
/// older checkout.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
