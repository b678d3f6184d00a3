// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The executables a `cargo build`/`cargo test --no-run` with `--message-format=json` reports:
//! its `compiler-artifact` messages, one JSON document a line, read with serde_json (xtask is
//! never published, so the dependency costs its users nothing).

use std::path::PathBuf;

use serde::Deserialize;

/// One built executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    /// Its target's name (`tests/foo.rs` is `foo`).
    pub name: String,
    /// Its target's kinds (`bin`, `test`, `example`, ...).
    pub kinds: Vec<String>,
    /// Its target's main source file.
    pub src_path: PathBuf,
    /// The executable.
    pub path: PathBuf,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    #[serde(default)]
    kind: Vec<String>,
    #[serde(default)]
    src_path: PathBuf,
}

/// The executables that cargo's JSON messages in `stdout` report, in order. Lines that are
/// not JSON, other messages and artifacts without an executable (libraries) are passed over.
pub fn executables(stdout: &[u8]) -> Vec<Executable> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter_map(|m| {
            let t = m.target?;
            Some(Executable {
                name: t.name,
                kinds: t.kind,
                src_path: t.src_path,
                path: m.executable?,
            })
        })
        .collect()
}

/// The executable of target `name`, if cargo reported one.
pub fn executable_named(stdout: &[u8], name: &str) -> Option<PathBuf> {
    executables(stdout)
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = concat!(
        r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"libc","src_path":"/r/libc/src/lib.rs"},"executable":null,"fresh":true}"#,
        "\n",
        "not json at all\n",
        r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"xen_privcmd","src_path":"/w/crates/xen-bindings/tests/xen_privcmd.rs","edition":"2021"},"profile":{"opt_level":"0"},"executable":"/t/debug/deps/xen_privcmd-1f2e","fresh":false}"#,
        "\n",
        r#"{"reason":"build-finished","success":true}"#,
        "\n",
    );

    #[test]
    fn only_artifacts_with_an_executable_are_reported() {
        assert_eq!(
            executables(OUT.as_bytes()),
            [Executable {
                name: "xen_privcmd".into(),
                kinds: vec!["test".into()],
                src_path: "/w/crates/xen-bindings/tests/xen_privcmd.rs".into(),
                path: "/t/debug/deps/xen_privcmd-1f2e".into(),
            }]
        );
    }

    #[test]
    fn an_executable_is_found_by_its_target_name() {
        assert_eq!(
            executable_named(OUT.as_bytes(), "xen_privcmd"),
            Some(PathBuf::from("/t/debug/deps/xen_privcmd-1f2e"))
        );
        assert_eq!(executable_named(OUT.as_bytes(), "libc"), None);
        assert_eq!(executable_named(b"", "xen_privcmd"), None);
    }
}
