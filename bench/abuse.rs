//! The console under attack, on loopback only: the release server binary, four attacking
//! clients (each from its own address, 127.0.0.2–5) that send 1,000 wrong sign-ins and 200
//! upload PATCHes that stall, and meanwhile a normal user (127.0.0.9) who signs in, lists
//! images and uploads 64 MiB. Prints the normal user's timings (p50/p99) beside the same
//! user's timings before the attack, and how many attacking requests were refused with what
//! status. Bounded: a fixed number of requests, and stalls end at the server's idle timeout.
//! Run it with `bench/abuse`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image_console::server_fns::auth::{SignIn, SignUp};
use image_console::server_fns::images::{CreateImage, GetImage, ListImages};
use leptos::server_fn::ServerFn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery";
const ATTACKERS: u8 = 4;
const WRONG_SIGN_INS_EACH: usize = 250;
const STALLED_PATCHES_EACH: usize = 50;
/// The server's idle timeout for a PATCH in this run; shorter than the default 60 s so the
/// run ends sooner. The other limits keep their defaults.
const UPLOAD_IDLE_SECONDS: u64 = 10;
const LIST_CALLS: usize = 200;
const UPLOAD_BYTES: usize = 64 << 20;

/// How often each status came back, per kind of attacking request.
type Tally = Arc<Mutex<BTreeMap<(&'static str, u16), usize>>>;

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Calls a server function as the hydrated app does; returns status, body and any cookie.
/// The request is built before the future, which then owns everything it needs.
fn call(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> impl std::future::Future<Output = (u16, String, Option<String>)> + Send + 'static {
    let mut request = http
        .post(format!("{base}{path}"))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .form(form);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    async move {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned());
        (status, response.text().await.unwrap_or_default(), cookie)
    }
}

async fn sign_up(http: &reqwest::Client, base: &str, account: &str) -> String {
    let user = format!("admin@{account}");
    let (status, body, cookie) = call(
        http,
        base,
        SignUp::PATH,
        &[
            ("account_id", account),
            ("user_name", &user),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        None,
    )
    .await;
    cookie.unwrap_or_else(|| panic!("sign-up of {account} failed: {status} {body}"))
}

/// Creates an image for a local file of `size` bytes and its tus upload; returns the
/// image id and the upload's path.
async fn new_upload(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    name: &str,
    size: usize,
) -> (String, String) {
    let size_text = size.to_string();
    let (status, body, _) = call(
        http,
        base,
        CreateImage::PATH,
        &[
            ("name", name),
            ("source", "file"),
            ("file_name", "disk.img"),
            ("file_size", &size_text),
            ("os_family", "linux"),
            ("os_platform", "ubuntu"),
            ("min_disk", "1"),
            ("min_ram", "1"),
            ("visibility", "private"),
            ("description", ""),
        ],
        Some(cookie),
    )
    .await;
    assert_eq!(status, 200, "create image: {body}");
    let id: String = serde_json::from_str(&body).unwrap();
    let created = http
        .post(format!("{base}/images/{id}/uploads"))
        .header("cookie", cookie)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", &size_text)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    (id, location)
}

/// A PATCH that promises 1 MiB, sends 1 KiB and then nothing; returns the status the server
/// ends it with (0 if it just closed).
async fn stalled_patch(from: IpAddr, server: SocketAddr, cookie: String, location: String) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {server}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&[0u8; 1024]).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(UPLOAD_IDLE_SECONDS + 30),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// One attacking client: wrong sign-ins (8 at a time) and, beside them, stalled PATCHes on
/// its own account's uploads.
async fn attack(n: u8, base: String, server: SocketAddr, tally: Tally) {
    let from = loopback(2 + n);
    let http = client_from(from);
    let cookie = sign_up(&http, &base, &format!("attacker-{n}")).await;
    let mut uploads = Vec::new();
    for u in 0..10 {
        uploads.push(
            new_upload(&http, &base, &cookie, &format!("stall {u}"), 1 << 20)
                .await
                .1,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Wrong sign-ins, eight in flight at a time.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..WRONG_SIGN_INS_EACH {
        let name = match i % 3 {
            0 => "admin@victim".to_owned(),
            1 => format!("admin@attacker-{n}"),
            _ => format!("guess-{n}-{i}@example.com"),
        };
        let permit = Arc::clone(&in_flight).acquire_owned().await.unwrap();
        let sent = call(
            &http,
            &base,
            SignIn::PATH,
            &[("user_name", &name), ("password", "not the password")],
            None,
        );
        let counts = Arc::clone(&tally);
        tasks.spawn(async move {
            let (status, _, _) = sent.await;
            *counts
                .lock()
                .unwrap()
                .entry(("sign-in", status))
                .or_default() += 1;
            drop(permit);
        });
        if i == 0 {
            // The stalled PATCHes start beside the first sign-ins.
            for p in 0..STALLED_PATCHES_EACH {
                let (cookie, location) = (cookie.clone(), uploads[p % uploads.len()].clone());
                let counts = Arc::clone(&tally);
                tasks.spawn(async move {
                    let status = stalled_patch(from, server, cookie, location).await;
                    *counts.lock().unwrap().entry(("PATCH", status)).or_default() += 1;
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// p50 and p99 of a set of durations, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}

/// What the normal user measured.
struct UserFigures {
    sign_in: Duration,
    sign_in_first_try: bool,
    list: Vec<Duration>,
    upload: Duration,
    upload_active: bool,
}

/// The normal user: signs in, lists images `LIST_CALLS` times, uploads 64 MiB.
async fn normal_user(base: &str, http: &reqwest::Client) -> UserFigures {
    let started = Instant::now();
    let (status, body, cookie) = call(
        http,
        base,
        SignIn::PATH,
        &[("user_name", "admin@normal"), ("password", PASSWORD)],
        None,
    )
    .await;
    let sign_in = started.elapsed();
    let sign_in_first_try = status == 200 && cookie.is_some();
    let cookie = cookie.unwrap_or_else(|| panic!("the normal user's sign-in: {status} {body}"));
    let mut list = Vec::with_capacity(LIST_CALLS);
    for _ in 0..LIST_CALLS {
        let started = Instant::now();
        let (status, body, _) = call(
            http,
            base,
            ListImages::PATH,
            &[("query", "")],
            Some(&cookie),
        )
        .await;
        list.push(started.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    let bytes: Vec<u8> = (0..UPLOAD_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let started = Instant::now();
    let (id, location) = new_upload(http, base, &cookie, "normal upload", UPLOAD_BYTES).await;
    let mut offset = 0;
    while offset < UPLOAD_BYTES {
        let end = (offset + (16 << 20)).min(UPLOAD_BYTES);
        let answer = http
            .patch(format!("{base}{location}"))
            .header("cookie", &cookie)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 204, "{:?}", answer.text().await);
        offset = end;
    }
    let upload = started.elapsed();
    let (_, detail, _) = call(http, base, GetImage::PATH, &[("id", &id)], Some(&cookie)).await;
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    UserFigures {
        sign_in,
        sign_in_first_try,
        list,
        upload,
        upload_active: detail["status"] == "Active",
    }
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(root.join("target")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_image-console"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", work.path().join("bench.db").display()),
        )
        .env("DATA_DIR", work.path().join("data"))
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SITE_ROOT", work.path().join("site"))
        .env("UPLOAD_IDLE_SECONDS", UPLOAD_IDLE_SECONDS.to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary starts");
    let address: SocketAddr =
        image_console::server::read_announced_address(server.stdout.take().unwrap())
            .expect("the server prints its address");
    let base = format!("http://{address}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let user = client_from(loopback(9));
        // Set-up, before the attack: the normal user's and the victim's accounts, and a
        // baseline of the same calls.
        sign_up(&client_from(loopback(10)), &base, "victim").await;
        let cookie = sign_up(&user, &base, "normal").await;
        for n in 0..20 {
            call(
                &user,
                &base,
                CreateImage::PATH,
                &[
                    ("name", &format!("image {n:02}")),
                    ("source", "url"),
                    ("source_url", "https://images.example/disk.qcow2"),
                    ("os_family", "linux"),
            ("os_platform", "ubuntu"),
                    ("min_disk", "10"),
                    ("min_ram", "1"),
                    ("visibility", "private"),
                    ("description", ""),
                ],
                Some(&cookie),
            )
            .await;
        }
        let baseline = normal_user(&base, &user).await;

        let tally: Tally = Arc::default();
        let started = Instant::now();
        let attackers: Vec<_> = (0..ATTACKERS)
            .map(|n| tokio::spawn(attack(n, base.clone(), address, Arc::clone(&tally))))
            .collect();
        // Let the attack get going, then act as the normal user in the middle of it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = normal_user(&base, &user).await;
        for attacker in attackers {
            attacker.await.unwrap();
        }
        let attack_seconds = started.elapsed().as_secs_f64();

        println!(
            "bench/abuse: {ATTACKERS} attacking clients (127.0.0.2-{}) and a normal user (127.0.0.9) on loopback; default limits, PATCH idle timeout {UPLOAD_IDLE_SECONDS} s",
            1 + ATTACKERS
        );
        println!(
            "attack: {} wrong sign-ins and {} stalled PATCHes over {attack_seconds:.1} s",
            usize::from(ATTACKERS) * WRONG_SIGN_INS_EACH,
            usize::from(ATTACKERS) * STALLED_PATCHES_EACH
        );
        for ((kind, status), count) in tally.lock().unwrap().iter() {
            let meaning = match status {
                400 => "checked and refused (wrong password)",
                408 => "cut off by the idle timeout",
                409 => "refused: another request holds that upload",
                429 => "refused: over a limit",
                503 => "refused: the server is at its limit",
                0 => "closed without an answer",
                _ => "",
            };
            println!("  {kind:8} {status:3} × {count:4}  {meaning}");
        }
        let row = |label: &str, figures: &UserFigures| {
            let (p50, p99) = percentiles(figures.list.clone());
            println!(
                "{label:15} sign-in {:6.1} ms (first try: {}); Image List p50 {p50:5.2} ms p99 {p99:6.2} ms ({LIST_CALLS} calls); upload 64 MiB {:5.2} s ({:.0} MiB/s, Active: {})",
                figures.sign_in.as_secs_f64() * 1000.0,
                if figures.sign_in_first_try { "yes" } else { "no" },
                figures.upload.as_secs_f64(),
                64.0 / figures.upload.as_secs_f64(),
                if figures.upload_active { "yes" } else { "no" },
            );
        };
        println!("normal user:");
        row("  before attack", &baseline);
        row("  during attack", &during);
        let (_, p99) = percentiles(during.list.clone());
        let met = p99 < 50.0 && during.sign_in_first_try && during.upload_active;
        println!(
            "goal (list p99 < 50 ms, sign-in first time, upload completes): {}",
            if met { "met" } else { "NOT met" }
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
