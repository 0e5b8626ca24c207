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
//! Encrypted images beside unencrypted ones, in the same rounds: an upload as one tus PATCH,
//! a download whole and its second half, and twenty 1 MiB Ranges in the middle of the file.
//!
//! Conversion on import beside `qemu-img convert` alone: a VMDK of the same size, from the end
//! of its upload to Active.
//!
//! Signed uploads (RSA-PSS with SHA-256, ECDSA P-384 with SHA-384) beside an unsigned one,
//! with `sha256sum`, `sha384sum` and `sha512sum` of the file as the limits.
//!
//! Run it with `bench/bytes` (a 4 GiB file) or `bench/bytes 1` (1 GiB); `BENCH_ONLY=conversion`
//! runs the conversion rounds alone, `BENCH_ONLY=signature` the signed uploads alone.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;

use common::console::Console;
use common::measure::{Round, Sample, cpu_seconds, curl, median, status_kib, timed};
use common::servers::{Nginx, S3Server};

const GIB: u64 = 1 << 30;
const MIB: f64 = 1_048_576.0;
/// Rounds, unless `BENCH_ROUNDS` says otherwise.
const ROUNDS: usize = 3;

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
    // BENCH_LOG sets the console's RUST_LOG; BENCH_QEMU_IMG its QEMU_IMG.
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let console = Console::start(
        work,
        "data",
        &[
            ("RUST_LOG", setting("BENCH_LOG", "warn")),
            ("QEMU_IMG", setting("BENCH_QEMU_IMG", "qemu-img")),
        ],
    );
    if std::env::var("BENCH_ONLY").as_deref() == Ok("conversion") {
        conversion_beside_qemu_img(&console, work, &file, size, rounds_wanted);
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("signature") {
        signed_beside_unsigned(&console, work, &file, size, rounds_wanted);
        return;
    }
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
    // The same file encrypted, for the encrypted downloads.
    let (_, sealed) = console.upload_encrypted_with_curl(&file, size);
    assert_eq!(console.status(&sealed), "Active");
    let sealed_link = console.download_link(&sealed);
    let half = size / 2;
    let range = format!("{half}-");
    // Once through the page cache, as every later read will be (the encrypted copy too).
    timed(Command::new("cat").arg(&stored));
    timed(Command::new("cat").arg(work.join("data/blobs/images").join(&sealed)));

    let mut rounds: Vec<Round> = Vec::new();
    let mut tus_client_cpu = Vec::new();
    for round in 1..=rounds_wanted {
        let r = one_round(
            &Steps {
                console: &console,
                file: &file,
                size,
                nginx_url: &nginx.url("bench.qcow2"),
                link: &link,
                sealed_link: &sealed_link,
                range: &range,
                served: &served,
                root,
                work,
            },
            &mut tus_client_cpu,
        );
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
        median(rounds.iter().map(|r| pick(r.get(name))).collect())
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

    // Encrypted beside unencrypted, each measured in the same rounds.
    println!();
    println!(
        "| Encrypted, {} GiB, median of {rounds_wanted} | Encrypted | Unencrypted | Ratio | Goal | Server CPU (enc / plain) |",
        size / GIB
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (encrypted, plain, label, goal) in [
        (
            "encrypted upload curl",
            "upload curl",
            "Upload, one PATCH (curl)",
            0.8,
        ),
        (
            "encrypted download",
            "download",
            "Download, whole file",
            0.7,
        ),
        (
            "encrypted download range",
            "download range",
            "Download, second half (Range)",
            0.7,
        ),
        // At most twice the time: at least half the speed.
        (
            "encrypted range 1m",
            "range 1m",
            "1 MiB Range in the middle (20 in a row)",
            0.5,
        ),
    ] {
        let (e, p) = (speed(encrypted), speed(plain));
        let ratio = e / p;
        let shown = |name: &str, v: f64| {
            if name.ends_with("range 1m") {
                format!(
                    "{:.1} ms each",
                    med(name, &|s| s.seconds) * 1000.0 / RANGE_REPEATS as f64
                )
            } else {
                format!("{v:.0} MiB/s")
            }
        };
        println!(
            "| {label} | {} | {} | {ratio:.2} | {} {goal} {} | {:.1} / {:.1} s |",
            shown(encrypted, e),
            shown(plain, p),
            if goal == 0.5 {
                "≥ (time ≤ 2×)"
            } else {
                "≥"
            },
            if ratio >= goal { "met" } else { "not met" },
            med(encrypted, &|s| s.cpu),
            med(plain, &|s| s.cpu),
        );
    }

    conversion_beside_qemu_img(&console, work, &file, size, rounds_wanted);

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

/// Conversion on import beside qemu-img alone, in the same run: VMDKs of the bench file
/// (streamOptimized, as VMware exports them in an OVA, and monolithicSparse), each uploaded
/// with Convert to qcow2 and timed from the end of its upload (every byte received, hashed,
/// inspected and stored) to Active, against `qemu-img convert -f vmdk -O qcow2` of the same
/// file into the same filesystem, just written as an upload writes it (O_DIRECT, fsync). Before
/// each step the page cache is written back and dropped (where the bench may), so both read
/// their VMDK from the disk.
fn conversion_beside_qemu_img(
    console: &Console,
    work: &Path,
    file: &Path,
    size: u64,
    rounds: usize,
) {
    let settle = || {
        timed(&mut Command::new("sync"));
        // Root only; elsewhere both steps read what the cache holds.
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
    };
    let mut lines = Vec::new();
    for subformat in ["streamOptimized", "monolithicSparse"] {
        let vmdk = work.join("bench.vmdk");
        let status = Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "vmdk", "-o"])
            .arg(format!("subformat={subformat}"))
            .arg(file)
            .arg(&vmdk)
            .status()
            .expect("qemu-img");
        assert!(status.success());
        let vmdk_len = std::fs::metadata(&vmdk).unwrap().len();
        let out = work.join("alone.qcow2");
        let (mut alone, mut console_times, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        let mut hashes = Vec::new();
        let received = work.join("received.vmdk");
        for round in 1..=rounds {
            // qemu-img alone converts the file as an upload leaves it: just written with
            // O_DIRECT and fsynced (the disk is slower to read and write right after that than
            // after a rest, for qemu-img as for the console).
            settle();
            timed(
                Command::new("dd")
                    .arg(format!("if={}", vmdk.display()))
                    .arg(format!("of={}", received.display()))
                    .args(["bs=4M", "oflag=direct", "conv=fsync", "status=none"]),
            );
            let seconds = timed(
                Command::new("qemu-img")
                    .args(["convert", "-f", "vmdk", "-O", "qcow2"])
                    .arg(&received)
                    .arg(&out),
            );
            // SHA-512 of the result, which the console must compute once qemu-img is done
            // (the output file is in the cache, as the console's is).
            hashes.push(timed(Command::new("sha512sum").arg(&out)));
            std::fs::remove_file(&out).unwrap();
            std::fs::remove_file(&received).unwrap();
            settle();
            alone.push(seconds);
            let (_, id) = console.upload_converted_with_curl(&vmdk, vmdk_len, "qcow2");
            // Timed by the server's own record (received and checked → Active), polled
            // seldom so the polling does not slow what it measures.
            let sample = console.measure(|| {
                loop {
                    match console.status(&id).as_str() {
                        "Converting" => std::thread::sleep(std::time::Duration::from_millis(250)),
                        "Active" => break,
                        other => panic!("the conversion ended {other}"),
                    }
                }
                console.event_gap_ms(&id, "ImportFinished", "ConversionFinished") as f64 / 1000.0
            });
            console.destroy(&id);
            console_times.push(sample.seconds);
            cpu.push(sample.cpu);
            println!(
                "conversion of {subformat} round {round}: qemu-img alone {seconds:.1} s, console {:.1} s",
                sample.seconds
            );
        }
        let _ = std::fs::remove_file(&vmdk);
        let (alone, console_seconds, hash) = (median(alone), median(console_times), median(hashes));
        let ratio = alone / console_seconds;
        lines.push(format!(
            "| {subformat}, {:.2} GiB | {console_seconds:.1} s | {alone:.1} s | {hash:.1} s | {ratio:.2} | {:.2} | ≥ 0.9 {} | {:.1} s |",
            vmdk_len as f64 / GIB as f64,
            alone / (alone + hash),
            if ratio >= 0.9 { "met" } else { "not met" },
            median(cpu)
        ));
    }
    println!();
    println!(
        "| VMDK to qcow2, {} GiB disk, median of {rounds} | Console (received → Active) | qemu-img alone | sha512sum of the result | Ratio | Ceiling: qemu-img / (qemu-img + sha512sum) | Goal | Server CPU (without qemu-img) |",
        size / GIB
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for line in lines {
        println!("{line}");
    }
}

/// What each round's steps work on.
struct Steps<'a> {
    console: &'a Console,
    file: &'a Path,
    size: u64,
    nginx_url: &'a str,
    /// A signed download link to the image every download reads.
    link: &'a str,
    /// One to the same file, encrypted.
    sealed_link: &'a str,
    /// Its second half, as a Range.
    range: &'a str,
    /// The image every download reads.
    served: &'a str,
    root: &'a Path,
    work: &'a Path,
}

/// One round: the limits (dd, sha512sum, nginx), then each of the console's steps once.
fn one_round(steps: &Steps, tus_client_cpu: &mut Vec<f64>) -> Round {
    let Steps {
        console,
        file,
        size,
        nginx_url,
        link,
        sealed_link,
        range,
        served,
        root,
        ..
    } = *steps;
    let half = size / 2;
    let mut r = Round::default();
    let copy = steps.work.join("dd.out");
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
        console.measure(|| timed(Command::new("sha512sum").arg(file))),
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
    r.add("nginx", console.measure(|| get(nginx_url, None, size)));
    r.add("download", console.measure(|| get(link, None, size)));
    r.add(
        "nginx range",
        console.measure(|| get(nginx_url, Some(range), size - half)),
    );
    r.add(
        "download range",
        console.measure(|| get(link, Some(range), size - half)),
    );
    r.add(
        "encrypted download",
        console.measure(|| get(sealed_link, None, size)),
    );
    r.add(
        "encrypted download range",
        console.measure(|| get(sealed_link, Some(range), size - half)),
    );
    // 1 MiB in the middle, not on a segment boundary, twenty times in one curl.
    let mib = format!("{}-{}", half + 12_345, half + 12_345 + (1 << 20) - 1);
    r.add(
        "range 1m",
        console.measure(|| ranges(link, &mib, RANGE_REPEATS)),
    );
    r.add(
        "encrypted range 1m",
        console.measure(|| ranges(sealed_link, &mib, RANGE_REPEATS)),
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
            let (seconds, id) = console.upload_with_curl(file, size);
            made.push(id);
            seconds
        }),
    );
    r.add(
        "encrypted upload curl",
        console.measure(|| {
            let (seconds, id) = console.upload_encrypted_with_curl(file, size);
            made.push(id);
            seconds
        }),
    );
    r.add(
        "upload api",
        console.measure(|| {
            let (seconds, id) = console.upload_with_api(file);
            made.push(id);
            seconds
        }),
    );
    r.add(
        "upload tus-js",
        console.measure(|| {
            let (seconds, id, client_cpu) = console.upload_with_tus_js(file, size, root);
            made.push(id);
            tus_client_cpu.push(client_cpu);
            seconds
        }),
    );
    r.add(
        "import",
        console.measure(|| {
            let (seconds, id) = console.import(nginx_url);
            made.push(id);
            seconds
        }),
    );
    for id in &made {
        assert_eq!(console.status(id), "Active");
        console.delete(id);
    }
    r
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
                    let s = r.get(name);
                    size as f64 / MIB / s.seconds
                })
                .collect(),
        )
    };
    let pick = |name: &str, f: &dyn Fn(&Sample) -> f64| {
        median(rounds.iter().map(|r| f(r.get(name))).collect())
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

/// How many times the 1 MiB Range is asked for in one step.
const RANGE_REPEATS: usize = 20;

/// Seconds for `times` requests of one Range of `url` (one curl, one connection).
fn ranges(url: &str, range: &str, times: usize) -> f64 {
    let mut command = Command::new("curl");
    command.args(["-s", "-r", range, "-w", "%{http_code} %{size_download}\n"]);
    for _ in 0..times {
        command.args(["-o", "/dev/null", url]);
    }
    let began = Instant::now();
    let output = command.output().expect("curl");
    let seconds = began.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.lines().count(), times, "{text}");
    assert!(text.lines().all(|l| l == "206 1048576"), "{text}");
    seconds
}

/// How many bytes a step moves.
fn size_of(name: &str, size: u64) -> u64 {
    if name.ends_with("range 1m") {
        (RANGE_REPEATS as u64) << 20
    } else if name.ends_with("range") {
        size - size / 2
    } else {
        size
    }
}

/// A tus upload of the file, unsigned and signed (the signature's hash computed beside SHA-512
/// and MD5, then verified), in turns, with the hash tools alone on the same file.
fn signed_beside_unsigned(console: &Console, work: &Path, file: &Path, size: u64, rounds: usize) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    let key = |name: &str| work.join(name).to_str().unwrap().to_owned();
    let (rsa, ec) = (key("rsa.key"), key("ec.key"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        &rsa,
    ]);
    openssl(&[
        "ecparam",
        "-name",
        "secp384r1",
        "-genkey",
        "-noout",
        "-out",
        &ec,
    ]);
    let mut kinds = Vec::new();
    for (key, hash, key_type) in [
        (&rsa, "SHA-256", "RSA-PSS"),
        (&ec, "SHA-384", "ECC_SECP384R1"),
    ] {
        let cert = format!("{key}.pem");
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            "/CN=bench",
        ]);
        let certificate = console.add_certificate(&std::fs::read_to_string(&cert).unwrap());
        let sig = format!("{key}.sig");
        let digest = format!("-{}", hash.replace('-', "").to_lowercase());
        let mut args = vec!["dgst", digest.as_str(), "-sign", key.as_str()];
        if key_type == "RSA-PSS" {
            args.extend(["-sigopt", "rsa_padding_mode:pss"]);
        }
        args.extend(["-out", sig.as_str(), file.to_str().unwrap()]);
        openssl(&args);
        let signature = base64_of(&std::fs::read(&sig).unwrap());
        kinds.push((
            format!("{key_type} {hash}"),
            hash,
            key_type,
            certificate,
            signature,
        ));
    }
    let mib_s = |seconds: f64| size as f64 / MIB / seconds;
    let (mut unsigned, mut signed) = (Vec::new(), vec![Vec::new(); kinds.len()]);
    let mut tools: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (n, tool) in ["sha256sum", "sha384sum", "sha512sum"].iter().enumerate() {
            tools[n].push(timed(Command::new(tool).arg(file)));
        }
        let (seconds, id) = console.upload_with_curl(file, size);
        assert_eq!(console.status(&id), "Active");
        console.destroy(&id);
        unsigned.push(seconds);
        for (n, (_, hash, key_type, certificate, signature)) in kinds.iter().enumerate() {
            let fields = [
                ("img_signature_certificate_uuid", certificate.as_str()),
                ("img_signature_hash_method", *hash),
                ("img_signature_key_type", *key_type),
                ("img_signature", signature.as_str()),
            ];
            let (seconds, id) = console.upload_signed_with_curl(file, size, &fields);
            assert_eq!(console.status(&id), "Active", "the signature verifies");
            console.destroy(&id);
            signed[n].push(seconds);
        }
    }
    let unsigned = median(unsigned);
    println!(
        "signed uploads, {} GiB, median of {rounds} (MiB/s): sha256sum {:.0}, sha384sum {:.0}, sha512sum {:.0}; unsigned tus PATCH {:.0}",
        size / GIB,
        mib_s(median(tools[0].clone())),
        mib_s(median(tools[1].clone())),
        mib_s(median(tools[2].clone())),
        mib_s(unsigned),
    );
    for (n, (name, ..)) in kinds.iter().enumerate() {
        let seconds = median(signed[n].clone());
        println!(
            "  signed {name}: {:.0} MiB/s, {:.2} of unsigned",
            mib_s(seconds),
            unsigned / seconds
        );
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
