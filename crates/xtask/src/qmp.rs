// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What a box was doing when it stopped making progress, asked through QEMU's machine
//! protocol (QMP) before the harness kills it.
//!
//! A box that hangs leaves a serial log that simply stops: nothing says whether the emulated
//! CPUs were spinning in a guest, stuck in Xen, or halted. QEMU still answers on its QMP
//! socket, so the harness records each CPU's registers twice, a second apart (a RIP that does
//! not move is a tight loop or a halt), and on x86_64 injects an NMI: Xen, booted with
//! `nmi=fatal`, then prints the interrupted CPU's state and a stack trace on the serial log and
//! reboots (QEMU exits, `-no-reboot`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long one QMP answer may take; a QEMU that does not answer is itself the finding.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// A QMP connection in command mode.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation.
    fn connect(socket: &Path) -> Result<Self, String> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        stream
            .set_read_timeout(Some(ANSWER_LIMIT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.next_message()?;
        if greeting.get("QMP").is_none() {
            return Err(format!("not a QMP greeting: {greeting}"));
        }
        qmp.execute(&serde_json::json!({ "execute": "qmp_capabilities" }))?;
        Ok(qmp)
    }

    /// The next message QEMU sends (one JSON object per line).
    fn next_message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("QEMU closed the QMP socket".into()),
            Ok(_) => {
                serde_json::from_str(&line).map_err(|e| format!("bad QMP message {line:?}: {e}"))
            }
            Err(e) => Err(format!("no QMP answer within {ANSWER_LIMIT:?}: {e}")),
        }
    }

    /// Sends `command` and returns its `return` value; events in between are skipped.
    fn execute(&mut self, command: &Value) -> Result<Value, String> {
        let mut text = command.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot send {command}: {e}"))?;
        loop {
            let msg = self.next_message()?;
            if let Some(r) = msg.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = msg.get("error") {
                return Err(format!("{command} failed: {e}"));
            }
        }
    }

    /// Runs a human monitor command (`info registers -a`, `nmi`) and returns its output.
    fn hmp(&mut self, command_line: &str) -> Result<String, String> {
        let r = self.execute(&serde_json::json!({
            "execute": "human-monitor-command",
            "arguments": { "command-line": command_line }
        }))?;
        Ok(r.as_str().unwrap_or_default().replace('\r', ""))
    }
}

/// Asks the box behind `socket` what its CPUs are doing: their registers twice, a second
/// apart, then (with `nmi`) an NMI for Xen to answer on the serial log. Never fails: what
/// could not be asked is said in the text.
pub fn hang_report(socket: &Path, nmi: bool) -> String {
    let mut out = String::new();
    let mut qmp = match Qmp::connect(socket) {
        Ok(q) => q,
        Err(e) => return format!("(QMP: {e})\n"),
    };
    for sample in 1..=2 {
        if sample == 2 {
            std::thread::sleep(Duration::from_secs(1));
        }
        match qmp.hmp("info registers -a") {
            Ok(regs) => out.push_str(&format!(
                "--- CPU registers, sample {sample} of 2 ---\n{}\n",
                summary(&regs)
            )),
            Err(e) => out.push_str(&format!("(info registers: {e})\n")),
        }
    }
    if nmi {
        match qmp.hmp("nmi") {
            Ok(_) => out.push_str(
                "--- NMI injected: Xen's answer (nmi=fatal) follows in the serial log ---\n",
            ),
            Err(e) => out.push_str(&format!("(nmi: {e})\n")),
        }
    }
    out
}

/// The lines of `info registers` that tell where a CPU is: its number, instruction pointer,
/// code and stack segments, control registers and the SVM/EL state, not the vector registers.
fn summary(regs: &str) -> String {
    regs.lines()
        .filter(|l| {
            let l = l.trim_start();
            [
                "CPU#", "RAX=", "RSI=", "R8 =", "R12=", "RIP=", "CS =", "SS =", "GS =", "FS =",
                "CR0=", "CR2=", "EFER=", "PC=", "X00=", "X04=", "PSTATE=",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_keeps_where_each_cpu_is() {
        let regs = "CPU#0\nRAX=0000000000000000 RBX=0000000000000001 RCX=0 RDX=0\n\
                    RIP=ffff82d040201234 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\n\
                    ES =0000 0000000000000000 ffffffff 00c00000\n\
                    CS =e008 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\n\
                    XMM00=0000000000000000 0000000000000000\n\
                    CPU#1\nRIP=ffffffff81000000 RFL=00000002 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0\n";
        let s = summary(regs);
        assert!(s.contains("CPU#0") && s.contains("CPU#1"));
        assert!(s.contains("RIP=ffff82d040201234") && s.contains("HLT=1"));
        assert!(s.contains("CS =e008"));
        assert!(!s.contains("XMM00") && !s.contains("ES =0000"));
    }

    #[test]
    fn a_missing_socket_is_said_not_fatal() {
        let r = hang_report(Path::new("/nonexistent/xen-box.qmp"), true);
        assert!(r.starts_with("(QMP: cannot connect"), "{r}");
    }
}
