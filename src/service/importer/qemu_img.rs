//! `qemu-img`, run as Glance's image conversion runs it: `info` and `measure` under
//! `prlimit` (1 GiB of address space, a few CPU seconds), the format always given with `-f`
//! (never probed), and `convert` as a process group of its own, killed with the group when
//! its conversion is cancelled, times out, or the console stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::domain::image::DiskFormat;

/// Address space and CPU seconds `info` and `measure` may use: a crafted header that makes
/// qemu-img allocate or loop without end is stopped.
const PROBE_ADDRESS_SPACE: u64 = 1 << 30;
const PROBE_CPU_SECONDS: u64 = 4;
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a failed run's standard error is kept to find its reason.
const STDERR_KEPT: usize = 8 << 10;

/// The qemu-img program and a count of the processes this console started with it.
#[derive(Clone, Debug)]
pub struct QemuImg {
    program: PathBuf,
    started: Arc<AtomicU64>,
}

/// What `qemu-img info` says of a file, as far as the console checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub format: String,
    pub virtual_size: u64,
    pub backing_file: bool,
    pub data_file: bool,
    /// A VMDK's create type.
    pub create_type: Option<String>,
    /// A VMDK's extents' file names.
    pub extents: Vec<String>,
}

/// How a run of qemu-img ended short of success.
#[derive(Debug)]
pub enum Failure {
    /// qemu-img said no: its reason, in one line.
    Refused(String),
    /// It ran past its time.
    TimedOut(Duration),
    /// It could not be started or read (the program is missing).
    Io(std::io::Error),
}

/// qemu-img's name for a format's driver.
pub fn driver(format: DiskFormat) -> &'static str {
    match format {
        DiskFormat::Qcow2 => "qcow2",
        DiskFormat::Raw => "raw",
        DiskFormat::Vmdk => "vmdk",
        DiskFormat::Vhd => "vpc",
        DiskFormat::Vhdx => "vhdx",
        DiskFormat::Iso => "raw",
    }
}

impl QemuImg {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            started: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many qemu-img processes this console has started.
    pub fn processes_started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// A probe (`info`, `measure`) under `prlimit`, in a process group of its own.
    fn probe(&self, args: &[&str]) -> Command {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--as={PROBE_ADDRESS_SPACE}"))
            .arg(format!("--cpu={PROBE_CPU_SECONDS}"))
            .arg("--")
            .arg(&self.program)
            .args(args);
        command
    }

    /// `qemu-img info -f <format> --output=json` of `path`.
    pub async fn info(&self, path: &Path, format: DiskFormat) -> Result<Info, Failure> {
        let path_text = path.to_string_lossy();
        let command = self.probe(&["info", "-f", driver(format), "--output=json", &path_text]);
        let out = self.run_to_end(command, PROBE_TIMEOUT, path).await?;
        parse_info(&out).map_err(Failure::Refused)
    }

    /// The bytes `qemu-img measure` says converting `path` to `to` needs at most.
    pub async fn measure(
        &self,
        path: &Path,
        from: DiskFormat,
        to: DiskFormat,
    ) -> Result<u64, Failure> {
        let path_text = path.to_string_lossy();
        let command = self.probe(&[
            "measure",
            "-f",
            driver(from),
            "-O",
            driver(to),
            "--output=json",
            &path_text,
        ]);
        let out = self.run_to_end(command, PROBE_TIMEOUT, path).await?;
        let value: serde_json::Value = serde_json::from_slice(&out)
            .map_err(|_| Failure::Refused("qemu-img measure gave no answer".into()))?;
        value["required"]
            .as_u64()
            .ok_or_else(|| Failure::Refused("qemu-img measure gave no size".into()))
    }

    /// Starts `qemu-img convert -p -f <from> -O <to> <source> <target>`.
    pub fn convert(
        &self,
        source: &Path,
        from: DiskFormat,
        target: &Path,
        to: DiskFormat,
    ) -> Result<Running, Failure> {
        let mut command = Command::new(&self.program);
        command
            .arg("convert")
            .arg("-p")
            .args(["-f", driver(from), "-O", driver(to)])
            .arg(source)
            .arg(target);
        let child = self.spawn(command)?;
        Ok(Running {
            child: ProcessGroup::new(child),
            hide: vec![source.to_path_buf(), target.to_path_buf()],
        })
    }

    fn spawn(&self, mut command: Command) -> Result<Child, Failure> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: runs in the child between fork and exec, calling only async-signal-safe
        // functions. A console killed outright (SIGKILL, no drop runs) takes qemu-img with
        // it instead of leaving it converting into scratch space the next start removes.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The console may have died before the prctl took effect.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("the console has stopped"));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(Failure::Io)?;
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(child)
    }

    /// Runs a probe to its end and returns its standard output.
    async fn run_to_end(
        &self,
        command: Command,
        timeout: Duration,
        hide: &Path,
    ) -> Result<Vec<u8>, Failure> {
        let child = ProcessGroup::new(self.spawn(command)?);
        let run = async {
            let mut child = child;
            let (mut stdout, mut stderr) = child.pipes();
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (read_out, read_err) =
                tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            read_out.map_err(Failure::Io)?;
            read_err.map_err(Failure::Io)?;
            let status = child.wait().await.map_err(Failure::Io)?;
            if !status.success() {
                return Err(Failure::Refused(reason_of(&err, status, &[hide])));
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| Failure::TimedOut(timeout))?
    }
}

/// A running `convert`: its progress, then how it ended. Dropping it kills its process group.
pub struct Running {
    child: ProcessGroup,
    /// Paths kept out of reasons (they name the console's scratch space).
    hide: Vec<PathBuf>,
}

impl Running {
    /// Waits for the end, calling `progress` with each percentage qemu-img reports.
    pub async fn finish(mut self, mut progress: impl FnMut(f64)) -> Result<(), Failure> {
        let (mut stdout, stderr) = self.child.pipes();
        let errors = tokio::spawn(read_tail(stderr));
        let mut buffer = [0u8; 512];
        let mut line = Vec::new();
        loop {
            let n = stdout.read(&mut buffer).await.map_err(Failure::Io)?;
            if n == 0 {
                break;
            }
            for &byte in &buffer[..n] {
                if byte == b'\r' || byte == b'\n' {
                    if let Some(percent) = parse_progress(&line) {
                        progress(percent);
                    }
                    line.clear();
                } else if line.len() < 128 {
                    line.push(byte);
                }
            }
        }
        let status = self.child.wait().await.map_err(Failure::Io)?;
        let err = errors.await.unwrap_or_default();
        if !status.success() {
            let hide: Vec<&Path> = self.hide.iter().map(PathBuf::as_path).collect();
            return Err(Failure::Refused(reason_of(&err, status, &hide)));
        }
        Ok(())
    }
}

/// A child that leads its own process group; the group is killed unless the child was
/// waited for.
struct ProcessGroup {
    child: Child,
    reaped: bool,
}

impl ProcessGroup {
    fn new(child: Child) -> Self {
        Self {
            child,
            reaped: false,
        }
    }

    fn pipes(&mut self) -> (tokio::process::ChildStdout, tokio::process::ChildStderr) {
        (
            self.child.stdout.take().expect("stdout is piped"),
            self.child.stderr.take().expect("stderr is piped"),
        )
    }

    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a negative pid signals the process group this child
            // leads (it was started with process_group(0)); it touches no memory.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        // `kill_on_drop` reaps the child itself.
    }
}

/// The last `STDERR_KEPT` bytes of a stream.
async fn read_tail(mut stream: tokio::process::ChildStderr) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > STDERR_KEPT {
            kept.drain(..kept.len() - STDERR_KEPT);
        }
    }
    kept
}

/// "(45.20/100%)" → 45.2.
fn parse_progress(line: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let inner = text.strip_prefix('(')?.strip_suffix("/100%)")?;
    inner.parse().ok()
}

/// qemu-img's reason in one line: its last message, without the paths of scratch files.
fn reason_of(stderr: &[u8], status: std::process::ExitStatus, hide: &[&Path]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned);
    let mut reason = match line {
        Some(line) => line,
        None => match std::os::unix::process::ExitStatusExt::signal(&status) {
            Some(signal) => format!("qemu-img was stopped by signal {signal}"),
            None => format!("qemu-img exited with {status}"),
        },
    };
    for path in hide {
        let full = path.to_string_lossy();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        reason = reason.replace(full.as_ref(), &name);
    }
    let reason = reason.strip_prefix("qemu-img: ").unwrap_or(&reason);
    reason.chars().take(300).collect()
}

fn parse_info(out: &[u8]) -> Result<Info, String> {
    let value: serde_json::Value =
        serde_json::from_slice(out).map_err(|_| "qemu-img info gave no answer".to_owned())?;
    let data = &value["format-specific"]["data"];
    Ok(Info {
        format: value["format"].as_str().unwrap_or_default().to_owned(),
        virtual_size: value["virtual-size"].as_u64().unwrap_or(0),
        backing_file: value.get("backing-filename").is_some()
            || value.get("full-backing-filename").is_some(),
        data_file: data.get("data-file").is_some(),
        create_type: data["create-type"].as_str().map(str::to_owned),
        extents: data["extents"]
            .as_array()
            .map(|extents| {
                extents
                    .iter()
                    .filter_map(|e| e["filename"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress(b"    (45.20/100%)"), Some(45.2));
        assert_eq!(parse_progress(b"(100.00/100%)"), Some(100.0));
        assert_eq!(parse_progress(b"qemu-img: error"), None);
    }

    #[test]
    fn info_reads_what_is_checked() {
        let info = parse_info(
            br#"{"virtual-size": 67108864, "filename": "s.vmdk", "format": "vmdk",
                "backing-filename": "base.qcow2",
                "format-specific": {"type": "vmdk", "data": {"create-type": "streamOptimized",
                "extents": [{"filename": "s.vmdk"}]}}}"#,
        )
        .unwrap();
        assert_eq!(info.format, "vmdk");
        assert_eq!(info.virtual_size, 64 << 20);
        assert!(info.backing_file);
        assert!(!info.data_file);
        assert_eq!(info.create_type.as_deref(), Some("streamOptimized"));
        assert_eq!(info.extents, vec!["s.vmdk".to_owned()]);
        let qcow2 = parse_info(
            br#"{"virtual-size": 1, "format": "qcow2",
                "format-specific": {"type": "qcow2", "data": {"data-file": "x.raw"}}}"#,
        )
        .unwrap();
        assert!(qcow2.data_file);
        assert!(parse_info(b"not json").is_err());
    }

    #[test]
    fn reasons_are_one_line_without_scratch_paths() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(256);
        let path = Path::new("/data/scratch/abc/source.vmdk");
        let reason = reason_of(
            b"qemu-img: Could not open '/data/scratch/abc/source.vmdk': Invalid footer\n\n",
            status,
            &[path],
        );
        assert_eq!(reason, "Could not open 'source.vmdk': Invalid footer");
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(
            reason_of(b"", killed, &[]),
            "qemu-img was stopped by signal 9"
        );
    }
}
