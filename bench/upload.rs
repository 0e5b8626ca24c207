//! Upload speed and server memory: the release server binary on 127.0.0.1 receives a 1 GiB
//! and a 4 GiB file from tus-js-client (64 MiB pieces), while the server's resident memory
//! is sampled every 100 ms from /proc. Prints MiB/s and RSS figures; checks that each image
//! ends Active. Run it with `bench/upload` (`bench/upload 1` for the 1 GiB file only).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image_console::server_fns::auth::SignUp;
use image_console::server_fns::images::{CreateImage, GetImage};
use leptos::server_fn::ServerFn;

const GIB: u64 = 1 << 30;

/// Resident memory of a process, in KiB: (now, peak).
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time a process has used, in seconds (user + system).
fn cpu_seconds(pid: u32) -> f64 {
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

/// A qcow2 header (from qemu-img) followed by `size` bytes in all, not all zeros.
fn make_file(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("16G")
        .status()
        .expect("qemu-img");
    assert!(status.success());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut written = std::fs::metadata(&path).unwrap().len();
    let block: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    while written < size {
        let n = (size - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    file.sync_all().unwrap();
    path
}

fn call(
    base: &str,
    path: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> (String, Option<String>) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut args = vec![
        "-s".to_owned(),
        "-D".to_owned(),
        "-".to_owned(),
        "-H".to_owned(),
        "Accept: application/json".to_owned(),
        "-H".to_owned(),
        "Sec-Fetch-Site: same-origin".to_owned(),
        "--data".to_owned(),
        body,
    ];
    if let Some(cookie) = cookie {
        args.extend(["-H".to_owned(), format!("Cookie: {cookie}")]);
    }
    args.push(format!("{base}{path}"));
    let output = Command::new("curl").args(&args).output().expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().to_owned())
        })
        .map(|c| c.split(';').next().unwrap_or_default().to_owned());
    (body.to_owned(), cookie)
}

fn main() {
    let sizes: Vec<u64> = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(gib) => vec![gib.parse::<u64>().expect("a size in GiB") * GIB],
        None => vec![GIB, 4 * GIB],
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(root.join("target")).unwrap();
    let data = work.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_image-console"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", work.path().join("bench.db").display()),
        )
        .env("DATA_DIR", &data)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SITE_ROOT", work.path().join("site"))
        .env("IMPORT_SIZE_LIMIT", "16GiB")
        .env("MAX_STORAGE_PER_ACCOUNT", "64GiB")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let pid = server.id();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("running at ")
                .nth(1)
                .and_then(|rest| rest.split('/').nth(2))
                .map(|host| format!("http://{host}"))
        })
        .expect("the server prints its address");
    std::thread::spawn(move || lines.for_each(drop));

    let (_, cookie) = call(
        &base,
        SignUp::PATH,
        &[
            ("account_id", "bench"),
            ("user_name", "admin@bench"),
            ("password", "correct horse battery"),
            ("password_confirm", "correct horse battery"),
        ],
        None,
    );
    let cookie = cookie.expect("signed up");
    let (_, idle_rss) = rss_kib(pid).unwrap();
    println!("server RSS at rest: {} MiB", idle_rss / 1024);

    for size in sizes {
        let file = make_file(work.path(), &format!("bench-{}g.qcow2", size / GIB), size);
        let size_text = size.to_string();
        let (id, _) = call(
            &base,
            CreateImage::PATH,
            &[
                ("name", "bench upload"),
                ("source", "file"),
                ("file_name", file.file_name().unwrap().to_str().unwrap()),
                ("file_size", &size_text),
                ("os_type", "ubuntu"),
                ("min_disk", "20"),
                ("min_ram", "1"),
                ("visibility", "private"),
                ("description", ""),
            ],
            Some(&cookie),
        );
        let id: String = serde_json::from_str(&id).expect("image created");

        let samples = Arc::new(Mutex::new(Vec::<u64>::new()));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (samples, done) = (Arc::clone(&samples), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some((rss, _)) = rss_kib(pid) {
                        samples.lock().unwrap().push(rss);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let cpu_before = cpu_seconds(pid);
        let output = Command::new("node")
            .arg(root.join("end2end/clients/tus-js-upload.mjs"))
            .arg(format!("{base}/images/{id}/uploads"))
            .arg(&cookie)
            .arg(&file)
            .arg("bench")
            .arg("64")
            .output()
            .expect("node runs tus-js-client");
        let server_cpu = cpu_seconds(pid) - cpu_before;
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        assert!(
            output.status.success(),
            "upload failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the client prints its figures");
        let (detail, _) = call(&base, GetImage::PATH, &[("id", &id)], Some(&cookie));
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["status"], "Active", "{detail}");

        let samples = samples.lock().unwrap().clone();
        let quarter = |q: usize| samples.get(samples.len() * q / 4).copied().unwrap_or(0) / 1024;
        let (_, peak) = rss_kib(pid).unwrap();
        println!(
            "{} GiB: {:.0} MiB/s ({:.1} s; server CPU {server_cpu:.1} s, client CPU {:.1} s); server RSS during the upload at 25/50/75%: {}/{}/{} MiB, max {} MiB; peak since start {} MiB",
            size / GIB,
            result["mib_per_s"].as_f64().unwrap_or(0.0),
            result["seconds"].as_f64().unwrap_or(0.0),
            result["cpu_seconds"].as_f64().unwrap_or(0.0),
            quarter(1),
            quarter(2),
            quarter(3),
            samples.iter().max().copied().unwrap_or(0) / 1024,
            peak / 1024
        );
        std::fs::remove_file(&file).unwrap();
    }
    let _ = server.kill();
    let _ = server.wait();
}
