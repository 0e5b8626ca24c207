//! The console under attack, on loopback only: the release server binary, four attacking
//! clients (each from its own address, 127.0.0.2–5) that send 1,000 wrong sign-ins, 200
//! upload PATCHes that stall, 300 image API PUTs that stall and 1,000 requests with wrong API
//! tokens, and meanwhile a normal user (127.0.0.9) who signs in, lists images, uploads 64 MiB
//! and downloads it. Prints the normal user's timings (p50/p99) beside the same user's
//! timings before the attack, and how many attacking requests were refused with what status.
//! Bounded: a fixed number of requests, and stalls end at the server's idle timeout. Run it
//! with `bench/abuse`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image_console::server_fns::api_tokens::CreateApiToken;
use image_console::server_fns::auth::{SignIn, SignUp};
use image_console::server_fns::images::{CreateDownloadLink, CreateImage, GetImage, ListImages};
use leptos::server_fn::ServerFn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::console::{PASSWORD, sign_up_form, start_console};
use common::measure::percentile;

const ATTACKERS: u8 = 4;
const WRONG_SIGN_INS_EACH: usize = 250;
const STALLED_PATCHES_EACH: usize = 50;
const STALLED_API_PUTS_EACH: usize = 75;
const WRONG_TOKENS_EACH: usize = 250;
/// The server's idle timeout for a PATCH or an API PUT in this run; shorter than the default
/// 60 s so the run ends sooner. The other limits keep their defaults.
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
    let form = sign_up_form(account);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, cookie) = call(http, base, SignUp::PATH, &form, None).await;
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

/// A request (`head`, which promises 1 MiB) that sends 1 KiB of its body and then nothing;
/// returns the status the server ends it with (0 if it just closed).
async fn stalled_request(from: IpAddr, server: SocketAddr, head: String) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
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

/// A tus PATCH that stalls.
async fn stalled_patch(from: IpAddr, server: SocketAddr, cookie: String, location: String) -> u16 {
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {server}\r\nCookie: {cookie}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    stalled_request(from, server, head).await
}

/// An image API `PUT /v2/images/{id}/file` that stalls.
async fn stalled_put(from: IpAddr, server: SocketAddr, token: String, id: String) -> u16 {
    let head = format!(
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: {server}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n"
    );
    stalled_request(from, server, head).await
}

/// An API token of the signed-in user.
async fn api_token(http: &reqwest::Client, base: &str, cookie: &str) -> String {
    let (status, body, _) = call(
        http,
        base,
        CreateApiToken::PATH,
        &[("name", "bench"), ("lifetime", "30")],
        Some(cookie),
    )
    .await;
    assert_eq!(status, 200, "create token: {body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    made["secret"].as_str().unwrap().to_owned()
}

/// A queued image through the image API, waiting for its data; its id.
async fn api_image(http: &reqwest::Client, base: &str, token: &str, name: &str) -> String {
    let created = http
        .post(format!("{base}/v2/images"))
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"name": "{name}", "disk_format": "qcow2", "container_format": "bare", "os_distro": "ubuntu"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let body: serde_json::Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// One attacking client: wrong sign-ins and wrong API tokens (8 of each at a time) and,
/// beside them, stalled PATCHes and API PUTs on its own account's images.
async fn attack(n: u8, base: String, server: SocketAddr, tally: Tally) {
    let from = loopback(2 + n);
    let http = client_from(from);
    let cookie = sign_up(&http, &base, &format!("attacker-{n}")).await;
    let token = api_token(&http, &base, &cookie).await;
    let mut uploads = Vec::new();
    for u in 0..10 {
        uploads.push(
            new_upload(&http, &base, &cookie, &format!("stall {u}"), 1 << 20)
                .await
                .1,
        );
    }
    let mut queued = Vec::new();
    for u in 0..STALLED_API_PUTS_EACH {
        queued.push(api_image(&http, &base, &token, &format!("api-stall-{u}")).await);
    }
    let count = |tally: &Tally, kind: &'static str, status: u16| {
        *tally.lock().unwrap().entry((kind, status)).or_default() += 1;
    };
    let mut tasks = tokio::task::JoinSet::new();
    // The stalled PATCHes and PUTs start together, beside the first sign-ins.
    for p in 0..STALLED_PATCHES_EACH {
        let (cookie, location) = (cookie.clone(), uploads[p % uploads.len()].clone());
        let counts = Arc::clone(&tally);
        tasks.spawn(async move {
            let status = stalled_patch(from, server, cookie, location).await;
            count(&counts, "PATCH", status);
        });
    }
    for id in queued {
        let (token, counts) = (token.clone(), Arc::clone(&tally));
        tasks.spawn(async move {
            let status = stalled_put(from, server, token, id).await;
            count(&counts, "API PUT", status);
        });
    }
    // Wrong sign-ins and wrong tokens, eight of each in flight at a time.
    let sign_ins = Arc::new(tokio::sync::Semaphore::new(8));
    let tokens = Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..WRONG_SIGN_INS_EACH.max(WRONG_TOKENS_EACH) {
        if i < WRONG_SIGN_INS_EACH {
            let name = match i % 3 {
                0 => "admin@victim".to_owned(),
                1 => format!("admin@attacker-{n}"),
                _ => format!("guess-{n}-{i}@example.com"),
            };
            let permit = Arc::clone(&sign_ins).acquire_owned().await.unwrap();
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
                count(&counts, "sign-in", status);
                drop(permit);
            });
        }
        if i < WRONG_TOKENS_EACH {
            let permit = Arc::clone(&tokens).acquire_owned().await.unwrap();
            let guess = format!("imgc_{:0>43}", format!("{n}x{i}"));
            let sent = http
                .get(format!("{base}/v2/images"))
                .header("x-auth-token", guess)
                .send();
            let counts = Arc::clone(&tally);
            tasks.spawn(async move {
                let status = sent.await.map(|r| r.status().as_u16()).unwrap_or(0);
                count(&counts, "token", status);
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// p50 and p99 of a set of durations, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |q: f64| percentile(&samples, q).as_secs_f64() * 1000.0;
    (ms(0.5), ms(0.99))
}

/// What the normal user measured.
struct UserFigures {
    sign_in: Duration,
    sign_in_first_try: bool,
    list: Vec<Duration>,
    upload: Duration,
    upload_active: bool,
    download: Duration,
    download_whole: bool,
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
    // And back down, through a download link.
    let started = Instant::now();
    let (status, link, _) = call(
        http,
        base,
        CreateDownloadLink::PATH,
        &[("id", &id)],
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200, "{link}");
    let link: serde_json::Value = serde_json::from_str(&link).unwrap();
    let downloaded = http
        .get(format!("{base}{}", link["path"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let download = started.elapsed();
    UserFigures {
        sign_in,
        sign_in_first_try,
        list,
        upload,
        upload_active: detail["status"] == "Active",
        download,
        download_whole: downloaded == bytes,
    }
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(root.join("target")).unwrap();
    let (mut server, address) = start_console(
        &work.path().join("bench.db"),
        &work.path().join("data"),
        &work.path().join("site"),
        &[
            ("UPLOAD_IDLE_SECONDS", UPLOAD_IDLE_SECONDS.to_string()),
            ("RUST_LOG", "error".to_owned()),
        ],
        Stdio::null(),
    );
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
        let each = usize::from(ATTACKERS);
        println!(
            "attack: {} wrong sign-ins, {} stalled PATCHes, {} stalled API PUTs and {} wrong API tokens over {attack_seconds:.1} s",
            each * WRONG_SIGN_INS_EACH,
            each * STALLED_PATCHES_EACH,
            each * STALLED_API_PUTS_EACH,
            each * WRONG_TOKENS_EACH,
        );
        for ((kind, status), count) in tally.lock().unwrap().iter() {
            let meaning = match status {
                400 => "checked and refused (wrong password)",
                401 => "checked and refused (unknown token)",
                408 => "cut off by the idle timeout",
                409 => "refused: another request holds that upload",
                429 => "refused: over a limit",
                503 => "refused: the server is at its limit",
                0 => "closed without an answer",
                _ => "",
            };
            println!("  {kind:8} {status:3} × {count:4}  {meaning}");
        }
        let yes = |b: bool| if b { "yes" } else { "no" };
        let row = |label: &str, figures: &UserFigures| {
            let (p50, p99) = percentiles(figures.list.clone());
            println!(
                "{label:15} sign-in {:6.1} ms (first try: {}); Image List p50 {p50:5.2} ms p99 {p99:6.2} ms ({LIST_CALLS} calls); upload 64 MiB {:5.2} s ({:.0} MiB/s, Active: {}); download 64 MiB {:5.2} s ({:.0} MiB/s, whole: {})",
                figures.sign_in.as_secs_f64() * 1000.0,
                yes(figures.sign_in_first_try),
                figures.upload.as_secs_f64(),
                64.0 / figures.upload.as_secs_f64(),
                yes(figures.upload_active),
                figures.download.as_secs_f64(),
                64.0 / figures.download.as_secs_f64(),
                yes(figures.download_whole),
            );
        };
        println!("normal user:");
        row("  before attack", &baseline);
        row("  during attack", &during);
        let (_, p99) = percentiles(during.list.clone());
        let met = p99 < 50.0
            && during.sign_in_first_try
            && during.upload_active
            && during.download_whole;
        println!(
            "goal (list p99 < 50 ms, sign-in first time, upload and download complete): {}",
            if met { "met" } else { "NOT met" }
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
