// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays the inputs a fuzz crate keeps in its `regressions/` folder.
//!
//! A kept input is named `<target>-<what>.bin`: the part before the first `-` names the target
//! it is replayed through. A name that matches no target is an error, not a skip, so an input
//! cannot silently stop being replayed when a target is renamed. Hidden files (`.gitkeep`) are
//! passed over.

use std::path::Path;

/// A fuzz target by name: the name its kept inputs start with, and the target's body.
pub type Target<'a> = (&'a str, fn(&[u8]));

/// Runs every input in `dir` through the target its name starts with (`targets` pairs target
/// names with their bodies) and returns how many ran. Inputs run in name order.
///
/// A relative `dir` is taken from the fuzz crate's directory as cargo gives it at run time
/// (`CARGO_MANIFEST_DIR`), not from where the test binary was built: a target directory shared
/// between checkouts may hold a binary built from another one.
///
/// # Panics
///
/// If `dir` cannot be read, an input cannot be read, an input's name names no target of
/// `targets`, or a target panics on its input (the regression the test is there to catch).
pub fn replay(dir: impl AsRef<Path>, targets: &[Target<'_>]) -> usize {
    let dir = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(root) if dir.as_ref().is_relative() => Path::new(&root).join(dir),
        _ => dir.as_ref().to_path_buf(),
    };
    let dir = dir.as_path();
    let mut inputs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    inputs.sort();
    for path in &inputs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = name.split_once('-').map_or(name.as_str(), |(t, _)| t);
        let Some((_, body)) = targets.iter().find(|(t, _)| *t == target) else {
            let known: Vec<_> = targets.iter().map(|(t, _)| *t).collect();
            panic!("{name}: no fuzz target `{target}` (inputs are named <target>-<what>; targets: {known:?})");
        };
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("replaying {name} through {target}");
        body(&data);
    }
    inputs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SEEN: AtomicUsize = AtomicUsize::new(0);

    fn count(data: &[u8]) {
        SEEN.fetch_add(data.len(), Ordering::SeqCst);
    }

    fn folder(files: &[(&str, &[u8])]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fuzz-regressions-{}-{}",
            std::process::id(),
            files.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in files {
            std::fs::write(dir.join(name), data).unwrap();
        }
        dir
    }

    #[test]
    fn each_input_runs_through_its_target_and_hidden_files_are_passed_over() {
        let dir = folder(&[
            ("count-a.bin", b"abc"),
            ("count-b.bin", b"de"),
            (".gitkeep", b""),
        ]);
        assert_eq!(
            replay(&dir, &[("count", count), ("other", |_| panic!())]),
            2
        );
        assert_eq!(SEEN.load(Ordering::SeqCst), 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    #[should_panic(expected = "no fuzz target `renamed`")]
    fn an_input_of_no_target_is_an_error() {
        let dir = folder(&[("renamed-x.bin", b"x")]);
        replay(&dir, &[("count", count)]);
    }
}
