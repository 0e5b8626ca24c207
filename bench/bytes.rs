//! Image bytes against what this machine can do, measured in the same run, over loopback.
//!
//! The limits: `dd conv=fsync` (durable writes), `sha512sum` (one core's SHA-512) and nginx
//! (`sendfile on`, config in `bench/nginx.conf`) serving the console's own stored file. The
//! console: a download by signed link, whole and its second half as a Range, and through the
//! image API; an upload as one tus PATCH from curl, as one image API `PUT /file` from curl,
//! and from tus-js-client in 64 MiB pieces; a URL import from that nginx. Each figure is printed beside its limit with the ratio, the server's CPU seconds
//! and its peak resident memory (VmHWM, reset before each step). The steps take turns for
//! three rounds and the medians are reported; then all four kinds run at once.
//!
//! Run it with `bench/bytes` (a 4 GiB file) or `bench/bytes 1` (1 GiB).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use image_console::server_fns::api_tokens::CreateApiToken;
use image_console::server_fns::auth::SignUp;
use image_console::server_fns::images::{CreateDownloadLink, CreateImage, DeleteImage, GetImage};
use leptos::server_fn::ServerFn;

const GIB: u64 = 1 << 30;
const MIB: f64 = 1_048_576.0;
/// Rounds, unless `BENCH_ROUNDS` says otherwise.
const ROUNDS: usize = 3;

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
fn make_file(path: &Path, size: u64) {
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(format!("{}G", 4 * size.div_ceil(GIB)))
        .status()
        .expect("qemu-img");
    assert!(status.success());
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut written = std::fs::metadata(path).unwrap().len();
    let block: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    while written < size {
        let n = (size - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    file.sync_all().unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to its end; its wall-clock seconds.
fn timed(command: &mut Command) -> f64 {
    let began = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("the command runs");
    assert!(status.success(), "{command:?} failed");
    began.elapsed().as_secs_f64()
}

/// The value of the header `name` (lower case) in a response head curl printed with `-D -`.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// curl's `-w` figures of one transfer: seconds, bytes received, HTTP status.
fn curl(args: &[&str]) -> (f64, u64, u16) {
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

struct Console {
    process: Child,
    pid: u32,
    base: String,
    cookie: String,
    /// An API token of the same user, for the image API's steps.
    token: String,
}

impl Console {
    /// A console whose database and data directory are `work/<name>`, with `env` on top.
    fn start(work: &Path, name: &str, env: &[(&str, String)]) -> Self {
        let dir = work.join(name);
        let mut process = Command::new(env!("CARGO_BIN_EXE_image-console"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", work.join(format!("{name}.db")).display()),
            )
            .env("DATA_DIR", &dir)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("SITE_ROOT", work.join("site"))
            .env("IMPORT_SIZE_LIMIT", "64GiB")
            .env("IMPORT_ALLOWED_NETWORKS", "127.0.0.1")
            .env("MAX_STORAGE_PER_ACCOUNT", "256GiB")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let pid = process.id();
        let address = image_console::server::read_announced_address(process.stdout.take().unwrap())
            .expect("the server prints its address");
        let base = format!("http://{address}");
        let mut console = Self {
            process,
            pid,
            base,
            cookie: String::new(),
            token: String::new(),
        };
        let (_, cookie) = console.call(
            SignUp::PATH,
            &[
                ("account_id", "bench"),
                ("user_name", "admin@bench"),
                ("password", "correct horse battery"),
                ("password_confirm", "correct horse battery"),
            ],
        );
        console.cookie = cookie.expect("signed up");
        let (made, _) = console.call(
            CreateApiToken::PATH,
            &[("name", "bench"), ("lifetime", "30")],
        );
        let made: serde_json::Value = serde_json::from_str(&made).expect("a token");
        console.token = made["secret"].as_str().expect("its secret").to_owned();
        console
    }

    /// Creates an image through the image API and sends `file` as its data in one
    /// `PUT /v2/images/{id}/file` with curl; the PUT's seconds and the image.
    fn upload_with_api(&self, file: &Path) -> (f64, String) {
        let token = format!("X-Auth-Token: {}", self.token);
        let output = Command::new("curl")
            .args(["-s", "-H", &token, "-H", "Content-Type: application/json"])
            .args([
                "--data",
                r#"{"name": "bench api", "disk_format": "qcow2", "os_distro": "ubuntu"}"#,
            ])
            .arg(format!("{}/v2/images", self.base))
            .output()
            .expect("curl");
        let created: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the image is created");
        let id = created["id"].as_str().expect("its id").to_owned();
        let (seconds, _, code) = curl(&[
            "-X",
            "PUT",
            "-T",
            file.to_str().unwrap(),
            "-H",
            &token,
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            &format!("{}/v2/images/{id}/file", self.base),
        ]);
        assert_eq!(code, 204, "the data is taken whole");
        (seconds, id)
    }

    /// Calls a server function; its JSON body and the cookie it set, if any.
    fn call(&self, path: &str, form: &[(&str, &str)]) -> (String, Option<String>) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "-H", "Accept: application/json"])
            .args(["-H", "Sec-Fetch-Site: same-origin", "--data", &body])
            .args(["-H", &format!("Cookie: {}", self.cookie)])
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let cookie = header_value(head, "set-cookie")
            .map(|c| c.split(';').next().unwrap_or_default().to_owned());
        (body.to_owned(), cookie)
    }

    fn create(&self, source: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("name", "bench bytes"),
            ("os_family", "linux"),
            ("os_platform", "ubuntu"),
            ("min_disk", "20"),
            ("min_ram", "1"),
            ("visibility", "private"),
            ("description", ""),
        ];
        form.extend_from_slice(source);
        let (body, _) = self.call(CreateImage::PATH, &form);
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("image created: {body}"))
    }

    fn status(&self, id: &str) -> String {
        let (body, _) = self.call(GetImage::PATH, &[("id", id)]);
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
        detail["status"].as_str().unwrap_or_default().to_owned()
    }

    fn delete(&self, id: &str) {
        self.call(DeleteImage::PATH, &[("id", id)]);
    }

    fn download_link(&self, id: &str) -> String {
        let (body, _) = self.call(CreateDownloadLink::PATH, &[("id", id)]);
        let link: serde_json::Value = serde_json::from_str(&body).unwrap();
        format!("{}{}", self.base, link["path"].as_str().unwrap())
    }

    fn create_upload(&self, file: &Path, size: u64) -> String {
        self.create(&[
            ("source", "file"),
            ("file_name", file.file_name().unwrap().to_str().unwrap()),
            ("file_size", &size.to_string()),
        ])
    }

    /// Creates an image and uploads `file` to it in one PATCH with curl; the PATCH's seconds.
    fn upload_with_curl(&self, file: &Path, size: u64) -> (f64, String) {
        let id = self.create_upload(file, size);
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST"])
            .args(["-H", "Tus-Resumable: 1.0.0"])
            .args(["-H", &format!("Upload-Length: {size}")])
            .args(["-H", &format!("Cookie: {}", self.cookie)])
            .arg(format!("{}/images/{id}/uploads", self.base))
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&output.stdout);
        let location = header_value(&head, "location").expect("the upload is created");
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let (seconds, _, code) = curl(&[
            "-X",
            "PATCH",
            "-T",
            file.to_str().unwrap(),
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Offset: 0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            "-H",
            "Expect:",
            "-H",
            &format!("Cookie: {}", self.cookie),
            &url,
        ]);
        assert_eq!(code, 204, "the PATCH is taken whole");
        (seconds, id)
    }

    /// Creates an image and uploads `file` with tus-js-client in 64 MiB pieces; its seconds,
    /// the image and the client's own CPU seconds.
    fn upload_with_tus_js(&self, file: &Path, size: u64, root: &Path) -> (f64, String, f64) {
        let id = self.create_upload(file, size);
        let output = Command::new("node")
            .arg(root.join("end2end/clients/tus-js-upload.mjs"))
            .arg(format!("{}/images/{id}/uploads", self.base))
            .arg(&self.cookie)
            .arg(file)
            .arg("bench")
            .arg("64")
            .output()
            .expect("node runs tus-js-client");
        assert!(
            output.status.success(),
            "upload failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the client prints its figures");
        (
            result["seconds"].as_f64().unwrap(),
            id,
            result["cpu_seconds"].as_f64().unwrap(),
        )
    }

    /// Creates an image from `url` and waits for it; the seconds from creation to Active.
    fn import(&self, url: &str) -> (f64, String) {
        let began = Instant::now();
        let id = self.create(&[("source", "url"), ("source_url", url)]);
        loop {
            match self.status(&id).as_str() {
                "Active" => return (began.elapsed().as_secs_f64(), id),
                "Failed" => panic!("the import failed"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The server's resident memory now, by kind.
    fn memory(&self) -> String {
        let kib = |field| status_kib(self.pid, field) / 1024;
        format!(
            "server RSS {} MiB (anonymous {} MiB, files {} MiB)",
            kib("VmRSS:"),
            kib("RssAnon:"),
            kib("RssFile:")
        )
    }

    /// Runs `step`, reporting the server's CPU seconds and its peak memory during it.
    fn measure(&self, step: impl FnOnce() -> f64) -> Sample {
        // Writing 5 to clear_refs resets VmHWM to the current resident size.
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").unwrap();
        let cpu = cpu_seconds(self.pid);
        let seconds = step();
        Sample {
            seconds,
            cpu: cpu_seconds(self.pid) - cpu,
            peak_kib: status_kib(self.pid, "VmHWM:"),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct Nginx {
    process: Child,
    port: u16,
}

impl Nginx {
    /// nginx serving `root` with the bench's config, on a free loopback port.
    fn start(root: &Path, work: &Path, config: &Path) -> Self {
        let port = free_port();
        let prefix = work.join("nginx");
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let text = std::fs::read_to_string(config)
            .unwrap()
            .replace("@PORT@", &port.to_string())
            .replace("@ROOT@", root.to_str().unwrap());
        let filled = prefix.join("nginx.conf");
        std::fs::write(&filled, text).unwrap();
        let process = Command::new("nginx")
            .args(["-e", "stderr", "-p"])
            .arg(&prefix)
            .arg("-c")
            .arg(&filled)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts (apt-get install nginx)");
        let began = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { process, port }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    seconds: f64,
    cpu: f64,
    peak_kib: u64,
}

/// What one round measured, by name.
#[derive(Default)]
struct Round(Vec<(&'static str, Sample)>);

impl Round {
    fn add(&mut self, name: &'static str, sample: Sample) {
        self.0.push((name, sample));
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let size = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(gib) => gib.parse::<u64>().expect("a size in GiB") * GIB,
        None => 4 * GIB,
    };
    let rounds_wanted: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS)
        .max(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(root.join("target")).unwrap();
    let work = work.path();
    let file = work.join("bench.qcow2");
    make_file(&file, size);
    let console = Console::start(work, "data", &[]);
    println!(
        "bench/bytes: {} GiB file, {rounds_wanted} rounds; server RSS at rest {} MiB",
        size / GIB,
        status_kib(console.pid, "VmRSS:") / 1024
    );

    // The image every download reads, and nginx serving its stored file.
    let (_, served) = console.upload_with_curl(&file, size);
    assert_eq!(console.status(&served), "Active");
    println!("after the first upload: {}", console.memory());
    let stored = work.join("data/blobs/images").join(&served);
    // nginx serves the stored file itself, under a name an image file URL may have.
    let www = work.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::os::unix::fs::symlink(&stored, www.join("bench.qcow2")).unwrap();
    let nginx = Nginx::start(&www, work, &root.join("bench/nginx.conf"));
    let link = console.download_link(&served);
    let half = size / 2;
    let range = format!("{half}-");
    // Once through the page cache, as every later read will be.
    timed(Command::new("cat").arg(&stored));

    let mut rounds: Vec<Round> = Vec::new();
    let mut tus_client_cpu = Vec::new();
    for round in 1..=rounds_wanted {
        let mut r = Round::default();
        let copy = work.join("dd.out");
        r.add(
            "dd",
            console.measure(|| {
                timed(
                    Command::new("dd")
                        .arg(format!("if={}", file.display()))
                        .arg(format!("of={}", copy.display()))
                        .args(["bs=1M", "conv=fsync", "status=none"]),
                )
            }),
        );
        std::fs::remove_file(&copy).unwrap();
        r.add(
            "sha512sum",
            console.measure(|| timed(Command::new("sha512sum").arg(&file))),
        );
        let get = |url: &str, range: Option<&str>, expect: u64| {
            let mut args = vec![url];
            if let Some(range) = range {
                args.extend(["-r", range]);
            }
            let (seconds, got, code) = curl(&args);
            assert!(code == 200 || code == 206, "{url}: HTTP {code}");
            assert_eq!(got, expect, "{url}: every byte");
            seconds
        };
        let nginx_url = nginx.url("bench.qcow2");
        r.add("nginx", console.measure(|| get(&nginx_url, None, size)));
        r.add("download", console.measure(|| get(&link, None, size)));
        r.add(
            "nginx range",
            console.measure(|| get(&nginx_url, Some(&range), size - half)),
        );
        r.add(
            "download range",
            console.measure(|| get(&link, Some(&range), size - half)),
        );
        let api_file = format!("{}/v2/images/{served}/file", console.base);
        let api_token = format!("X-Auth-Token: {}", console.token);
        r.add(
            "download api",
            console.measure(|| {
                let (seconds, got, code) = curl(&[&api_file, "-H", &api_token]);
                assert_eq!(code, 200, "{api_file}");
                assert_eq!(got, size, "{api_file}: every byte");
                seconds
            }),
        );
        let mut made = Vec::new();
        r.add(
            "upload curl",
            console.measure(|| {
                let (seconds, id) = console.upload_with_curl(&file, size);
                made.push(id);
                seconds
            }),
        );
        r.add(
            "upload api",
            console.measure(|| {
                let (seconds, id) = console.upload_with_api(&file);
                made.push(id);
                seconds
            }),
        );
        r.add(
            "upload tus-js",
            console.measure(|| {
                let (seconds, id, client_cpu) = console.upload_with_tus_js(&file, size, root);
                made.push(id);
                tus_client_cpu.push(client_cpu);
                seconds
            }),
        );
        r.add(
            "import",
            console.measure(|| {
                let (seconds, id) = console.import(&nginx_url);
                made.push(id);
                seconds
            }),
        );
        for id in &made {
            assert_eq!(console.status(id), "Active");
            console.delete(id);
        }
        let line: Vec<String> = r
            .0
            .iter()
            .map(|(name, s)| format!("{name} {:.0}", size_of(name, size) as f64 / MIB / s.seconds))
            .collect();
        println!(
            "round {round} (MiB/s): {}; {}",
            line.join(", "),
            console.memory()
        );
        rounds.push(r);
    }

    let med = |name: &str, pick: &dyn Fn(&Sample) -> f64| {
        median(
            rounds
                .iter()
                .map(|r| pick(&r.0.iter().find(|(n, _)| *n == name).unwrap().1))
                .collect(),
        )
    };
    let speed = |name: &str| med(name, &|s| size_of(name, size) as f64 / MIB / s.seconds);
    let (dd, sha, ng, ng_range) = (
        speed("dd"),
        speed("sha512sum"),
        speed("nginx"),
        speed("nginx range"),
    );
    let ingest_limit = dd.min(sha);
    println!();
    println!(
        "Limits (median MiB/s): dd conv=fsync {dd:.0}, sha512sum {sha:.0}, nginx {ng:.0} (second half {ng_range:.0})"
    );
    println!();
    println!(
        "| {} GiB, median of {rounds_wanted} | Console | Limit | Ratio | Goal | Server CPU | Server peak RSS |",
        size / GIB
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    let rows: [(&str, &str, String, f64, f64); 7] = [
        (
            "download",
            "Download, whole file",
            format!("nginx {ng:.0} MiB/s"),
            ng,
            0.9,
        ),
        (
            "download range",
            "Download, second half (Range)",
            format!("nginx {ng_range:.0} MiB/s"),
            ng_range,
            0.9,
        ),
        (
            "upload curl",
            "Upload, one PATCH (curl)",
            format!("min(dd, sha512sum) {ingest_limit:.0} MiB/s"),
            ingest_limit,
            0.8,
        ),
        (
            "download api",
            "Download, image API GET /file",
            format!("nginx {ng:.0} MiB/s"),
            ng,
            0.9,
        ),
        (
            "upload api",
            "Upload, image API PUT /file (curl)",
            format!("min(dd, sha512sum) {ingest_limit:.0} MiB/s"),
            ingest_limit,
            0.8,
        ),
        (
            "upload tus-js",
            "Upload, tus-js-client, 64 MiB pieces",
            format!("min(dd, sha512sum) {ingest_limit:.0} MiB/s"),
            ingest_limit,
            0.8,
        ),
        (
            "import",
            "URL import from nginx",
            format!("min(dd, sha512sum) {ingest_limit:.0} MiB/s"),
            ingest_limit,
            0.8,
        ),
    ];
    for (name, label, limit_text, limit, goal) in rows {
        let value = speed(name);
        let ratio = value / limit;
        println!(
            "| {label} | {value:.0} MiB/s | {limit_text} | {ratio:.2} | {goal} {} | {:.1} s | {:.0} MiB |",
            if ratio >= goal { "met" } else { "not met" },
            med(name, &|s| s.cpu),
            med(name, &|s| s.peak_kib as f64) / 1024.0,
        );
    }

    println!();
    println!(
        "tus-js-client's own CPU: {:.1} s (median); the server's CPU is in the table.",
        median(tus_client_cpu)
    );

    // All four kinds at once: the memory they need together.
    let together = console.measure(|| {
        let began = Instant::now();
        std::thread::scope(|scope| {
            let a = scope.spawn(|| console.upload_with_curl(&file, size).1);
            let b = scope.spawn(|| console.upload_with_tus_js(&file, size, root).1);
            let c = scope.spawn(|| console.import(&nginx.url("bench.qcow2")).1);
            let (_, got, _) = curl(&[&link]);
            assert_eq!(got, size);
            for id in [a.join().unwrap(), b.join().unwrap(), c.join().unwrap()] {
                assert_eq!(console.status(&id), "Active");
                console.delete(&id);
            }
        });
        began.elapsed().as_secs_f64()
    });
    println!();
    println!(
        "Four at once (curl upload, tus-js-client upload, URL import, download; {} GiB each): {:.1} s, server CPU {:.1} s, server peak RSS {} MiB (goal 128 MiB)",
        size / GIB,
        together.seconds,
        together.cpu,
        together.peak_kib / 1024
    );
    drop(console);

    s3_beside_files(work, root, &file, size, &rounds, &nginx);
    drop(nginx);
    let _ = std::fs::remove_file(&file);
}

/// s3s-fs, a real S3 server over a directory on the same disk, for the object-storage steps.
struct S3Server {
    process: Child,
    endpoint: String,
    key: String,
    secret: String,
}

impl S3Server {
    fn start(root: &Path, work: &Path) -> Self {
        let dir = work.join("s3");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let (key, secret) = (
            "bench-key".to_owned(),
            hex::encode(rand::random::<[u8; 16]>()),
        );
        let mut process = Command::new(root.join("target/tools/s3s-fs/bin/s3s-fs"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &key, "--secret-key", &secret])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts (scripts/ensure-tools bench installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        // CreateBucket through the S3 API, as any client makes one.
        let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for _ in 0..100 {
            let status = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-X", "PUT"])
                .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
                .args(["--user", &format!("{key}:{secret}")])
                .args(["-H", &format!("x-amz-content-sha256: {empty_sha256}")])
                .arg(format!("{endpoint}/bench"))
                .status()
                .unwrap();
            if status.success() {
                return Self {
                    process,
                    endpoint,
                    key,
                    secret,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = process.kill();
        let _ = process.wait();
        panic!("s3s-fs did not create the bucket");
    }
}

impl S3Server {
    /// curl, signed with the bench's keys, on `bench/<key>`; its seconds.
    fn curl(&self, args: &[&str], key: &str) -> f64 {
        let credentials = format!("{}:{}", self.key, self.secret);
        let url = format!("{}/bench/{key}", self.endpoint);
        let mut all = vec![
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &credentials,
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ];
        all.extend_from_slice(args);
        all.push(&url);
        let (seconds, _, code) = curl(&all);
        assert_eq!(code, 200, "s3s-fs answers {url}");
        seconds
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Uploads, downloads and an import with the bytes in s3s-fs, beside the same steps on files
/// from this run.
fn s3_beside_files(
    work: &Path,
    root: &Path,
    file: &Path,
    size: u64,
    file_rounds: &[Round],
    nginx: &Nginx,
) {
    let s3 = S3Server::start(root, work);
    let console = Console::start(
        work,
        "s3-console",
        &[
            ("STORAGE_URL", "s3://bench/console".to_owned()),
            ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", s3.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", s3.secret.clone()),
        ],
    );
    let s3_pid = s3.process.id();
    let (_, served) = console.upload_with_curl(file, size);
    assert_eq!(console.status(&served), "Active");
    let link = console.download_link(&served);
    let mut rounds: Vec<Round> = Vec::new();
    let mut s3_cpu: Vec<(&'static str, f64)> = Vec::new();
    for _ in 0..file_rounds.len() {
        let mut r = Round::default();
        let mut made = Vec::new();
        let mut step = |name: &'static str, r: &mut Round, run: &mut dyn FnMut() -> f64| {
            let before = cpu_seconds(s3_pid);
            r.add(name, console.measure(run));
            s3_cpu.push((name, cpu_seconds(s3_pid) - before));
        };
        step("upload curl", &mut r, &mut || {
            let (seconds, id) = console.upload_with_curl(file, size);
            made.push(id);
            seconds
        });
        step("download", &mut r, &mut || {
            let (seconds, got, code) = curl(&[&link]);
            assert!(code == 200 && got == size, "every byte from S3");
            seconds
        });
        step("import", &mut r, &mut || {
            let (seconds, id) = console.import(&nginx.url("bench.qcow2"));
            made.push(id);
            seconds
        });
        // s3s-fs alone, with curl: one PUT of the file and one GET of it.
        step("s3s-fs put", &mut r, &mut || {
            s3.curl(&["-T", file.to_str().unwrap()], "raw")
        });
        step("s3s-fs get", &mut r, &mut || s3.curl(&[], "raw"));
        for id in &made {
            assert_eq!(console.status(id), "Active");
            console.delete(id);
        }
        rounds.push(r);
    }
    let speed = |rounds: &[Round], name: &str| {
        median(
            rounds
                .iter()
                .map(|r| {
                    let s = &r.0.iter().find(|(n, _)| *n == name).unwrap().1;
                    size as f64 / MIB / s.seconds
                })
                .collect(),
        )
    };
    let pick = |name: &str, f: &dyn Fn(&Sample) -> f64| {
        median(
            rounds
                .iter()
                .map(|r| f(&r.0.iter().find(|(n, _)| *n == name).unwrap().1))
                .collect(),
        )
    };
    let (raw_put, raw_get) = (speed(&rounds, "s3s-fs put"), speed(&rounds, "s3s-fs get"));
    println!();
    println!("s3s-fs alone (curl, median MiB/s): one PUT {raw_put:.0}, one GET {raw_get:.0}");
    println!();
    println!(
        "| S3 (s3s-fs on the same disk), {} GiB, median | Files | S3 | Ratio | Goal | s3s-fs alone | S3 / alone | Server CPU | s3s-fs CPU | Server peak RSS |",
        size / GIB
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, label, alone) in [
        ("upload curl", "Upload, one PATCH (curl)", raw_put),
        ("download", "Download, whole file", raw_get),
        ("import", "URL import from nginx", raw_put),
    ] {
        let (files, objects) = (speed(file_rounds, name), speed(&rounds, name));
        let ratio = objects / files;
        let s3s = median(
            s3_cpu
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, c)| *c)
                .collect(),
        );
        println!(
            "| {label} | {files:.0} MiB/s | {objects:.0} MiB/s | {ratio:.2} | 0.7 {} | {alone:.0} MiB/s | {:.2} | {:.1} s | {s3s:.1} s | {:.0} MiB |",
            if ratio >= 0.7 { "met" } else { "not met" },
            objects / alone,
            pick(name, &|s| s.cpu),
            pick(name, &|s| s.peak_kib as f64) / 1024.0,
        );
    }
}

/// How many bytes a step moves.
fn size_of(name: &str, size: u64) -> u64 {
    if name.ends_with("range") {
        size - size / 2
    } else {
        size
    }
}
