//! Measuring a process and a transfer: CPU seconds and memory from /proc, wall-clock time of
//! a command, curl's figures, and medians and percentiles of samples.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A field of /proc/<pid>/status, in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time a process has used, in seconds (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to its end; its wall-clock seconds.
pub fn timed(command: &mut Command) -> f64 {
    let began = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("the command runs");
    assert!(status.success(), "{command:?} failed");
    began.elapsed().as_secs_f64()
}

/// The value of the header `name` (lower case) in a response head curl printed with `-D -`.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// curl's `-w` figures of one transfer: seconds, bytes received, HTTP status.
pub fn curl(args: &[&str]) -> (f64, u64, u16) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total} %{size_download} %{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().unwrap_or("0").to_owned();
    (
        next().parse().unwrap(),
        next().parse().unwrap(),
        next().parse().unwrap(),
    )
}

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub seconds: f64,
    pub cpu: f64,
    pub peak_kib: u64,
}

/// What one round measured, by name.
#[derive(Default)]
pub struct Round(pub Vec<(&'static str, Sample)>);

impl Round {
    pub fn add(&mut self, name: &'static str, sample: Sample) {
        self.0.push((name, sample));
    }

    /// The sample of step `name`, which the round must have.
    pub fn get(&self, name: &str) -> &Sample {
        &self.0.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The value at quantile `p` (0 to 1) of durations sorted in ascending order.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}
