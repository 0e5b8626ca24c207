//! Conversion on import: VMDK (streamOptimized, monolithicSparse), VHD (fixed, dynamic),
//! VHDX and raw files made by qemu-img from one random raw disk become qcow2 and raw images
//! whose guest-visible contents `qemu-img compare` finds identical to that disk; the file as
//! received is kept as the source file; cancel kills qemu-img's whole process group and
//! keeps nothing; a restart mid-conversion converts again; too little scratch space fails
//! before qemu-img converts. On SQLite, PostgreSQL and PostgreSQL with S3.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use image_console::domain::conversion::{ConvertTo, SourceFile};
use image_console::domain::history::HistoryTopic;
use image_console::domain::image::{DiskFormat, ImageDetail, ImageStatus};
use image_console::service::Actor;
use image_console::service::image_api::ApiChange;
use md5::Md5;
use sha2::{Digest, Sha512};

use crate::on_every_backend;
use crate::support::{
    Backend, Client, SourceServer, TestApp, body_bytes, create_form, list_dir, qemu_img,
    test_settings,
};
use crate::uploads::upload_form;

/// An app whose console-wide default (`CONVERT_TO`) is `target`.
pub(crate) async fn converting_app(backend: Backend, target: &str) -> TestApp {
    let mut settings = test_settings();
    settings.conversion.default = ConvertTo::parse(target).unwrap().unwrap();
    TestApp::spawn_with(backend, settings).await
}

/// A 6 MiB disk: random data in its first, third and last MiB, zeros between (so the sparse
/// formats have holes to keep).
fn random_disk(path: &Path) {
    let mut disk = vec![0u8; 6 << 20];
    for mib in [0usize, 2, 5] {
        for (i, b) in disk[mib << 20..(mib + 1) << 20].iter_mut().enumerate() {
            *b = (rand::random::<u32>() ^ i as u32) as u8;
        }
    }
    std::fs::write(path, disk).unwrap();
}

/// The files made from the disk: (name, qemu-img format, options, the console's format).
const SOURCES: [(&str, &str, &[&str], DiskFormat); 6] = [
    (
        "stream.vmdk",
        "vmdk",
        &["-o", "subformat=streamOptimized"],
        DiskFormat::Vmdk,
    ),
    (
        "sparse.vmdk",
        "vmdk",
        &["-o", "subformat=monolithicSparse"],
        DiskFormat::Vmdk,
    ),
    (
        "fixed.vhd",
        "vpc",
        &["-o", "subformat=fixed"],
        DiskFormat::Vhd,
    ),
    (
        "dynamic.vhd",
        "vpc",
        &["-o", "subformat=dynamic"],
        DiskFormat::Vhd,
    ),
    ("disk.vhdx", "vhdx", &[], DiskFormat::Vhdx),
    ("disk.raw", "raw", &[], DiskFormat::Raw),
];

/// Makes `path` from the raw `disk` with qemu-img, in its `format` with `options`.
fn convert_disk(disk: &Path, path: &Path, format: &str, options: &[&str]) {
    let mut args = vec!["convert", "-q", "-f", "raw", "-O", format];
    args.extend_from_slice(options);
    args.extend([disk.to_str().unwrap(), path.to_str().unwrap()]);
    qemu_img(&args);
}

/// Makes every source file from `disk` in the source server's folder.
fn make_sources(source: &SourceServer, disk: &Path) {
    for (name, format, options, _) in SOURCES {
        convert_disk(disk, &source.path(name), format, options);
    }
}

/// Whether qemu-img finds the guest-visible contents of `image` (in `format`) identical to
/// the raw `disk`.
fn identical(disk: &Path, image: &Path, format: DiskFormat) -> bool {
    let output = std::process::Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", format.as_str()])
        .arg(disk)
        .arg(image)
        .output()
        .unwrap();
    output.status.success()
}

fn source_file_of(path: &Path, format: DiskFormat) -> SourceFile {
    let bytes = std::fs::read(path).unwrap();
    SourceFile {
        disk_format: format,
        size_bytes: bytes.len() as u64,
        sha512: hex::encode(Sha512::digest(&bytes)),
        md5: hex::encode(Md5::digest(&bytes)),
    }
}

/// The image's bytes through a download link.
async fn downloaded(app: &TestApp, actor: &Actor, id: &str) -> Vec<u8> {
    let link = app.services.create_download_link(actor, id).await.unwrap();
    let response = Client::new(app)
        .send(Request::get(&link.path).body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    body_bytes(response).await
}

/// The checks every converted image must pass: Active in the target format, its source file
/// kept, its hashes those of its bytes, and its bytes the disk's contents.
async fn assert_converted(
    app: &TestApp,
    actor: &Actor,
    image: &ImageDetail,
    source: SourceFile,
    target: DiskFormat,
    disk: &Path,
) {
    let id = &image.id;
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    assert_eq!(image.disk_format, Some(target), "{id}");
    assert_eq!(image.source_file.as_ref(), Some(&source), "{id}");
    let bytes = downloaded(app, actor, id).await;
    assert_eq!(image.size_bytes, Some(bytes.len() as u64));
    assert_eq!(
        image.hash_value.as_deref(),
        Some(hex::encode(Sha512::digest(&bytes)).as_str())
    );
    assert_eq!(
        image.checksum_md5.as_deref(),
        Some(hex::encode(Md5::digest(&bytes)).as_str())
    );
    let out = app.data.path().join(format!("out-{id}"));
    std::fs::write(&out, &bytes).unwrap();
    assert!(
        identical(disk, &out, target),
        "{id}: {:?} converted to {target:?} differs from the disk",
        source.disk_format
    );
    std::fs::remove_file(out).unwrap();
    let history = app.services.image_history(actor, id, 1).await.unwrap();
    let finished = history
        .entries
        .iter()
        .find(|e| e.topic == HistoryTopic::ConversionFinished)
        .expect("the conversion is in Work History");
    assert!(
        finished.message.contains(&source.sha512),
        "{}",
        finished.message
    );
    assert!(
        finished
            .message
            .contains(image.hash_value.as_deref().unwrap()),
        "{}",
        finished.message
    );
}

/// Nothing but the images' blobs is left: no incoming bytes, no scratch files.
async fn assert_nothing_left(app: &TestApp, images: usize) {
    let (stored, incoming) = app.stored_files().await;
    assert_eq!(stored.len(), images, "{stored:?}");
    assert_eq!(incoming, Vec::<String>::new());
    assert_eq!(
        list_dir(&app.data.path().join("scratch")),
        Vec::<String>::new()
    );
}

async fn every_format_becomes_qcow2_and_raw(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    let disk = source.path("original.bin");
    random_disk(&disk);
    make_sources(&source, &disk);

    let mut made = Vec::new();
    for (name, _, _, format) in SOURCES {
        for target in [ConvertTo::Qcow2, ConvertTo::Raw] {
            let mut form = create_form(&name.replace('.', "-"), &source.url("files", name));
            form.convert_to = target.as_str().into();
            let id = app.services.create_image(&alice, &form).await.unwrap();
            made.push((id, name, format, target));
        }
    }
    for (id, name, format, target) in &made {
        let image = app.wait_for_import(&alice, id).await;
        let target_format = target.target().unwrap();
        if *format == target_format {
            // Already in the asked format: stored as it came.
            assert_eq!(image.status, ImageStatus::Active, "{image:?}");
            assert_eq!(image.source_file, None);
            continue;
        }
        let source_file = source_file_of(&source.path(name), *format);
        assert_converted(&app, &alice, &image, source_file, target_format, &disk).await;
    }
    assert_nothing_left(&app, made.len()).await;
}

/// A tus upload of an encrypted VHDX, and data through the image API's PUT, convert too;
/// the converted bytes are sealed under a data key of their own.
async fn uploads_and_api_data_convert(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("original.bin");
    random_disk(&disk);
    let vhdx = dir.path().join("disk.vhdx");
    convert_disk(&disk, &vhdx, "vhdx", &[]);
    let bytes = std::fs::read(&vhdx).unwrap();

    // A browser's upload, encrypted, converted to qcow2.
    let mut form = upload_form("disk.vhdx", bytes.len() as u64, "");
    form.convert_to = "qcow2".into();
    form.encryption = "on".into();
    let id = s.create_image(&alice, &form).await.unwrap();
    let upload = s
        .create_upload(&alice, &id, bytes.len() as u64, "")
        .await
        .unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(&bytes))]);
    s.append_upload(&alice, &upload.id, 0, None, body)
        .await
        .unwrap();
    let before = s.get_image(&alice, &id).await.unwrap();
    assert!(
        matches!(before.status, ImageStatus::Converting | ImageStatus::Active),
        "{before:?}"
    );
    let image = app.wait_for_import(&alice, &id).await;
    let source_file = source_file_of(&vhdx, DiskFormat::Vhdx);
    assert_converted(
        &app,
        &alice,
        &image,
        source_file.clone(),
        DiskFormat::Qcow2,
        &disk,
    )
    .await;
    assert!(image.encryption.is_some());
    // Sealed: the stored bytes are not the plain qcow2.
    let stored = app.stored_bytes(&id).await;
    assert_ne!(&stored[..4], b"QFI\xfb");

    // The image API: created with convert_to, data through PUT /file.
    let created = s
        .api_create_image(
            &alice,
            None,
            "vhdx",
            &[
                ApiChange::Name("api".into()),
                ApiChange::ConvertTo("raw".into()),
            ],
        )
        .await
        .unwrap();
    let api_id = created.detail.id.clone();
    let body = futures::stream::iter([Ok::<_, String>(Bytes::copy_from_slice(&bytes))]);
    s.api_upload_image_data(&alice, &api_id, Some(bytes.len() as u64), body)
        .await
        .unwrap();
    let image = app.wait_for_import(&alice, &api_id).await;
    assert_converted(&app, &alice, &image, source_file, DiskFormat::Raw, &disk).await;
    assert_nothing_left(&app, 2).await;
}

/// An ISO is never converted, and an image already in the target format is stored as it
/// came, with no qemu-img run.
async fn installation_images_are_not_converted(backend: Backend) {
    let app = converting_app(backend, "qcow2").await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    source.file("installer.iso", &crate::imports::iso_image());
    source.qcow2("disk.qcow2", "16M");
    for name in ["installer.iso", "disk.qcow2"] {
        let id = app
            .services
            .create_image(
                &alice,
                &create_form(&name.replace('.', "-"), &source.url("files", name)),
            )
            .await
            .unwrap();
        let image = app.wait_for_import(&alice, &id).await;
        assert_eq!(image.status, ImageStatus::Active, "{image:?}");
        assert_eq!(image.source_file, None);
    }
    assert_eq!(app.services.importer().converter_processes_started(), 0);
}

/// A tiny file of a large disk, converted to raw, would pass the size limit (64 MiB in the
/// tests): refused before qemu-img converts, saying how large it would be, with nothing kept.
async fn a_conversion_past_the_size_limit_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    source.qcow2("sparse.qcow2", "1G");
    let mut form = create_form("sparse", &source.url("files", "sparse.qcow2"));
    form.convert_to = "raw".into();
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let image = app.wait_for_import(&alice, &id).await;
    assert_eq!(image.status, ImageStatus::Failed, "{image:?}");
    assert_eq!(
        image.failure_reason.as_deref(),
        Some(
            "Converted to Raw, the image would take up to 1 GB, more than the 64 MB an image may have."
        )
    );
    // info and measure ran; convert did not.
    assert_eq!(app.services.importer().converter_processes_started(), 2);
    assert_nothing_left(&app, 0).await;
}

/// A qemu-img that, for `convert`, starts a child in its process group and waits on it,
/// recording both pids, unless `go` exists in `dir`; then it is qemu-img.
fn slow_qemu_img(dir: &Path) -> PathBuf {
    let script = dir.join("qemu-img");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = convert ] && [ ! -e {d}/go ]; then\n  echo $$ > {d}/convert.pid\n  sleep 300 &\n  echo $! > {d}/child.pid\n  wait\nfi\nexec qemu-img \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

async fn app_with_slow_converter(backend: Backend, tools: &Path) -> TestApp {
    let mut settings = test_settings();
    settings.conversion.qemu_img = slow_qemu_img(tools);
    TestApp::spawn_with(backend, settings).await
}

/// Waits until the slow converter has started its child; returns the child's pid.
async fn converter_child(tools: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(tools.join("child.pid"))
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "qemu-img convert never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} outlived its conversion"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cancel_kills_the_converter_and_keeps_nothing(backend: Backend) {
    let tools = tempfile::tempdir().unwrap();
    let app = app_with_slow_converter(backend, tools.path()).await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    random_disk(&source.path("disk.raw"));
    let mut form = create_form("disk", &source.url("files", "disk.raw"));
    form.convert_to = "qcow2".into();
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let child = converter_child(tools.path()).await;
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Converting);
    assert!(image.progress.is_some());

    app.services.cancel_import(&alice, &id).await.unwrap();
    wait_gone(child).await;
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Failed, "{image:?}");
    assert_eq!((image.size_bytes, image.hash_value), (None, None));
    assert!(app.services.importer().is_idle());
    assert_nothing_left(&app, 0).await;
}

async fn a_restart_converts_again(backend: Backend) {
    let tools = tempfile::tempdir().unwrap();
    let app = app_with_slow_converter(backend, tools.path()).await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    let disk = source.path("disk.raw");
    random_disk(&disk);
    let mut form = create_form("disk", &source.url("files", "disk.raw"));
    form.convert_to = "qcow2".into();
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let child = converter_child(tools.path()).await;

    // The shutdown stops the conversion (and its process group); the image stays Converting.
    std::fs::write(tools.path().join("go"), b"").unwrap();
    let app = app.restart().await;
    wait_gone(child).await;
    let image = app.wait_for_import(&alice, &id).await;
    let source_file = source_file_of(&disk, DiskFormat::Raw);
    assert_converted(&app, &alice, &image, source_file, DiskFormat::Qcow2, &disk).await;
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let started: Vec<&str> = history
        .entries
        .iter()
        .filter(|e| e.topic == HistoryTopic::ConversionStarted)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(started.len(), 2, "{started:?}");
    assert!(started[0].contains("attempt 2"), "{started:?}");
    assert_nothing_left(&app, 1).await;
}

async fn too_little_scratch_space_fails_before_converting(backend: Backend) {
    let mut settings = test_settings();
    settings.conversion.scratch_max_bytes = 1 << 20;
    let app = TestApp::spawn_with(backend, settings).await;
    let alice = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    random_disk(&source.path("disk.raw"));
    let mut form = create_form("disk", &source.url("files", "disk.raw"));
    form.convert_to = "qcow2".into();
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let image = app.wait_for_import(&alice, &id).await;
    assert_eq!(image.status, ImageStatus::Failed, "{image:?}");
    let reason = image.failure_reason.unwrap();
    assert!(
        reason.starts_with("Converting needs ")
            && reason.contains(" of scratch space for ")
            && reason.ends_with("and 1 MB is free; the conversion did not start."),
        "{reason}"
    );
    // qemu-img measured the result at most; it never converted.
    assert!(app.services.importer().converter_processes_started() <= 2);
    assert_nothing_left(&app, 0).await;
}

/// The real binary killed with SIGKILL while qemu-img converts: qemu-img goes with it, and
/// after a restart the image converts again and ends Active with nothing left behind.
async fn a_console_killed_mid_conversion_converts_after_a_restart(backend: Backend) {
    use crate::crash::{Server, create_image, image_detail};
    let db = crate::support::TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let tools = tempfile::tempdir().unwrap();
    let source = SourceServer::start().await;
    let disk = source.path("disk.raw");
    random_disk(&disk);
    let env = [
        (
            "QEMU_IMG".to_owned(),
            slow_qemu_img(tools.path()).display().to_string(),
        ),
        (
            "IMPORT_ALLOWED_NETWORKS".to_owned(),
            "127.0.0.1/32".to_owned(),
        ),
    ];
    let server = Server::start_with(db.url(), data.path(), &env);
    let cookie = Client::remote(&server.base).sign_up("crash-test").await;
    let url = source.url("files", "disk.raw");
    let id = create_image(
        &server.base,
        &cookie,
        "survivor",
        &[("source_url", url.as_str()), ("convert_to", "qcow2")],
    )
    .await;
    converter_child(tools.path()).await;
    let converter: i32 = std::fs::read_to_string(tools.path().join("convert.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    server.kill();
    wait_gone(converter).await;

    std::fs::write(tools.path().join("go"), b"").unwrap();
    let server = Server::start_with(db.url(), data.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let detail = image_detail(&server.base, &cookie, &id).await;
        if detail["status"] != "Converting" {
            break detail;
        }
        assert!(Instant::now() < deadline, "never converted: {detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail["status"], "Active", "{detail}");
    assert_eq!(detail["disk_format"], "Qcow2", "{detail}");
    assert_eq!(detail["source_file"]["disk_format"], "Raw", "{detail}");
    let blobs = data.path().join("blobs");
    let stored = list_dir(&blobs.join("images"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].starts_with(&id));
    assert!(identical(
        &disk,
        &blobs.join("images").join(&stored[0]),
        DiskFormat::Qcow2
    ));
    assert_eq!(list_dir(&blobs.join("staging")), Vec::<String>::new());
    assert_eq!(list_dir(&data.path().join("scratch")), Vec::<String>::new());
}

mod killed {
    use super::a_console_killed_mid_conversion_converts_after_a_restart;
    crate::on_both_databases!(a_console_killed_mid_conversion_converts_after_a_restart);
}

on_every_backend!(
    every_format_becomes_qcow2_and_raw,
    uploads_and_api_data_convert,
    installation_images_are_not_converted,
    cancel_kills_the_converter_and_keeps_nothing,
    a_restart_converts_again,
    too_little_scratch_space_fails_before_converting,
    a_conversion_past_the_size_limit_is_refused,
);
