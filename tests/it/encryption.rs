//! Encrypted images: sealed on every way in, opened on every way out and only while their key
//! can be used; ranges at and across segment boundaries, an upload resumed across a restart
//! mid-segment, tampered bytes, rotation and a deleted key. On SQLite, PostgreSQL and
//! PostgreSQL with S3.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use image_console::domain::history::HistoryTopic;
use image_console::domain::image::ImageStatus;
use image_console::domain::keys::KeyState;
use image_console::domain::share::ShareDecision;
use image_console::service::{Actor, ServiceError};
use image_console::store::blobs::sealed::{SEGMENT_BYTES, TAG_BYTES, sealed_len};
use sha2::{Digest, Sha512};

use crate::on_every_backend;
use crate::support::{Client, SourceServer, TestApp, create_form, text};
use crate::uploads::upload_form;

const SEG: usize = SEGMENT_BYTES;

/// A 4 KiB marker, placed in the plain bytes where no segment boundary falls.
fn marker() -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i.wrapping_mul(7_919) >> 3) as u8 ^ 0xA5)
        .collect()
}

/// Distinct bytes everywhere (a range from a wrong offset cannot pass), with the marker at
/// an unaligned offset past the first segment.
fn payload(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let at = SEG + 1000;
    bytes[at..at + 4096].copy_from_slice(&marker());
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}

/// Creates an encrypted image from a local file (`key`: a key id, or empty for the default
/// key), uploads `bytes` in one piece and waits until it is Active.
async fn encrypted_upload(app: &TestApp, actor: &Actor, key: &str, bytes: &[u8]) -> String {
    let mut form = upload_form("disk.raw", bytes.len() as u64, "");
    form.encryption = "on".into();
    form.encryption_key = key.into();
    let s = &app.services;
    let id = s.create_image(actor, &form).await.unwrap();
    let upload = s
        .create_upload(actor, &id, bytes.len() as u64, "")
        .await
        .unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(bytes))]);
    let info = s
        .append_upload(actor, &upload.id, 0, None, body)
        .await
        .unwrap();
    assert_eq!(info.offset, bytes.len() as u64);
    let image = s.get_image(actor, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    id
}

/// Downloads through a new link: the status and the bytes that arrived before the body ended
/// or broke off, and whether it broke off.
async fn download(
    app: &TestApp,
    actor: &Actor,
    id: &str,
    range: Option<String>,
) -> (StatusCode, Vec<u8>, bool) {
    let link = app.services.create_download_link(actor, id).await.unwrap();
    fetch(app, &link.path, range).await
}

async fn fetch(app: &TestApp, path: &str, range: Option<String>) -> (StatusCode, Vec<u8>, bool) {
    let mut request = Request::get(path);
    if let Some(range) = range {
        request = request.header(header::RANGE, range);
    }
    let response = Client::new(app)
        .send(request.body(Body::empty()).unwrap())
        .await;
    let status = response.status();
    let mut body = response.into_body();
    let (mut got, mut broke) = (Vec::new(), false);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    got.extend_from_slice(&data);
                }
            }
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    (status, got, broke)
}

async fn encrypted_bytes_are_sealed_and_come_back_whole(backend: crate::support::Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bytes = payload(5 * SEG + 1234);

    // No key yet: the console makes the account's default key for it.
    let id = encrypted_upload(&app, &alice, "", &bytes).await;
    let keys = s.list_keys(&alice).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].name.as_str(), keys[0].is_default),
        ("default", true)
    );
    assert_eq!(keys[0].images, 1);
    let image = s.get_image(&alice, &id).await.unwrap();
    let encryption = image.encryption.clone().expect("shown as encrypted");
    assert_eq!(encryption.key.id, keys[0].id);
    assert_eq!(encryption.key.name, "default");
    assert_eq!(encryption.key.state, KeyState::Enabled);
    assert_eq!(encryption.data_key_version, Some(1));
    // The hashes are of the plain bytes; the stored bytes are sealed.
    assert_eq!(
        image.hash_value.as_deref(),
        Some(sha512_hex(&bytes).as_str())
    );
    assert_eq!(image.size_bytes, Some(bytes.len() as u64));
    let stored = app.stored_bytes(&id).await;
    assert_eq!(stored.len() as u64, sealed_len(bytes.len() as u64));
    assert!(
        !contains(&stored, &marker()),
        "the marker lies in plain text"
    );
    // The list says so.
    let listed = crate::support::all_images(s, &alice).await;
    assert!(listed.iter().find(|i| i.id == id).unwrap().encrypted);
    // Work History records it.
    let history = s.image_history(&alice, &id, 1).await.unwrap();
    let created = history
        .entries
        .iter()
        .find(|e| e.topic == HistoryTopic::Created)
        .unwrap();
    assert_eq!(created.changes[0].field, "Encryption");
    assert!(created.changes[0].new.contains(&keys[0].id));

    // Whole, and ranges at and across segment boundaries.
    let (status, got, broke) = download(&app, &alice, &id, None).await;
    assert_eq!((status, broke), (StatusCode::OK, false));
    assert_eq!(got, bytes);
    let n = bytes.len();
    for (start, len) in [
        (0, 1),
        (SEG - 1, 2),
        (SEG, SEG),
        (SEG - 3, SEG + 6),
        (3 * SEG + 5, 2 * SEG - 10),
        (n - 1, 1),
        (n - 5000, 5000),
        (5 * SEG, n - 5 * SEG),
    ] {
        let range = format!("bytes={start}-{}", start + len - 1);
        let (status, got, broke) = download(&app, &alice, &id, Some(range.clone())).await;
        assert_eq!(
            (status, broke),
            (StatusCode::PARTIAL_CONTENT, false),
            "{range}"
        );
        assert_eq!(got, &bytes[start..start + len], "{range}");
    }

    // An unencrypted image beside it lies as it came.
    let mut form = upload_form("plain.raw", bytes.len() as u64, "");
    form.encryption = "off".into();
    let plain = s.create_image(&alice, &form).await.unwrap();
    let upload = s
        .create_upload(&alice, &plain, bytes.len() as u64, "")
        .await
        .unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes.clone()))]);
    s.append_upload(&alice, &upload.id, 0, None, body)
        .await
        .unwrap();
    assert_eq!(app.stored_bytes(&plain).await, bytes);
    assert!(
        s.get_image(&alice, &plain)
            .await
            .unwrap()
            .encryption
            .is_none()
    );

    // A URL import is sealed too, and so is a Create shared Image copy's use of its bytes.
    let source = SourceServer::start().await;
    source.file("web.raw", &bytes);
    let mut form = create_form("imported", &source.url("files", "web.raw"));
    form.encryption = "on".into();
    form.encryption_key = keys[0].id.clone();
    let imported = s.create_image(&alice, &form).await.unwrap();
    let image = app.wait_for_import(&alice, &imported).await;
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    assert!(!contains(&app.stored_bytes(&imported).await, &marker()));
    assert_eq!(download(&app, &alice, &imported, None).await.1, bytes);
    let copy = s
        .create_shared_image(&alice, &imported, "imported-shared")
        .await
        .unwrap();
    let copied = s.get_image(&alice, &copy).await.unwrap();
    assert_eq!(copied.encryption.unwrap().key.id, keys[0].id);
    assert_eq!(download(&app, &alice, &copy, None).await.1, bytes);
}

async fn an_upload_resumes_mid_segment_across_a_restart(backend: crate::support::Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("acme").await;
    let bytes = payload(3 * SEG + 1234);
    let mut form = upload_form("disk.raw", bytes.len() as u64, "");
    form.encryption = "on".into();
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let upload = app
        .services
        .create_upload(&alice, &id, bytes.len() as u64, "")
        .await
        .unwrap();
    // The first request breaks off in the middle of the second segment: only the whole
    // segment before it is durable, and the client is told to go on from there.
    let first = Bytes::copy_from_slice(&bytes[..SEG + 5000]);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(first)]);
    let info = app
        .services
        .append_upload(&alice, &upload.id, 0, None, body)
        .await
        .unwrap();
    assert_eq!(info.offset, SEG as u64);

    let app = app.restart().await;
    let found = app
        .services
        .upload_status(&alice, &upload.id)
        .await
        .unwrap();
    assert_eq!(found.offset, SEG as u64);
    let rest = Bytes::copy_from_slice(&bytes[SEG..]);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(rest)]);
    let info = app
        .services
        .append_upload(&alice, &upload.id, SEG as u64, None, body)
        .await
        .unwrap();
    assert_eq!(info.offset, bytes.len() as u64);
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    assert_eq!(image.hash_value.unwrap(), sha512_hex(&bytes));
    assert_eq!(download(&app, &alice, &id, None).await.1, bytes);
}

async fn tampered_bytes_end_the_download_before_a_wrong_byte(backend: crate::support::Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("acme").await;
    let bytes = payload(4 * SEG + 77);
    let id = encrypted_upload(&app, &alice, "", &bytes).await;
    let mut stored = app.stored_bytes(&id).await;
    stored[2 * (SEG + TAG_BYTES) + 10] ^= 0x01;
    app.replace_stored_bytes(&id, stored).await;

    let (status, got, broke) = download(&app, &alice, &id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(broke, "the response must break off");
    assert!(got.len() <= 2 * SEG, "{} bytes came", got.len());
    assert_eq!(got, &bytes[..got.len()], "only authenticated bytes came");
    // A range of untouched segments still comes whole; one that needs the bad one does not.
    let (status, got, broke) = download(&app, &alice, &id, Some("bytes=10-70000".into())).await;
    assert_eq!((status, broke), (StatusCode::PARTIAL_CONTENT, false));
    assert_eq!(got, &bytes[10..=70_000]);
    let range = format!("bytes={}-{}", 2 * SEG + 5, 2 * SEG + 100);
    let (_, got, broke) = download(&app, &alice, &id, Some(range)).await;
    assert!(broke && got.is_empty());
}

async fn a_key_that_cannot_be_used_refuses_until_it_can(backend: crate::support::Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let key = s.create_key(&alice, "prod", "", false).await.unwrap();
    let bytes = payload(2 * SEG + 10);
    let id = encrypted_upload(&app, &alice, &key, &bytes).await;
    s.share_image(&alice, &id, "globex").await.unwrap();
    s.decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    let owner_link = s.create_download_link(&alice, &id).await.unwrap();
    let bob_link = s.create_download_link(&bob, &id).await.unwrap();
    assert_eq!(fetch(&app, &bob_link.path, None).await.1, bytes);

    for (action, days) in [("disable", ""), ("schedule_deletion", "7")] {
        s.change_key(&alice, &key, action, days).await.unwrap();
        let response = Client::new(&app).get(&owner_link.path, None).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let said = text(response).await;
        assert!(said.contains("prod") && said.contains(&key), "{said}");
        assert_eq!(
            fetch(&app, &bob_link.path, None).await.0,
            StatusCode::FORBIDDEN
        );
        for refused in [
            s.create_download_link(&alice, &id).await.map(|_| ()),
            s.create_download_link(&bob, &id).await.map(|_| ()),
            s.api_image_data(&alice, &id).await.map(|_| ()),
            s.create_shared_image(&alice, &id, "copy").await.map(|_| ()),
        ] {
            match refused {
                Err(ServiceError::Forbidden(reason)) => assert!(reason.contains(&key), "{reason}"),
                other => panic!("expected a refusal naming the key, got {other:?}"),
            }
        }
        // Details shows why; a new image cannot be encrypted with it.
        let state = s
            .get_image(&alice, &id)
            .await
            .unwrap()
            .encryption
            .unwrap()
            .key
            .state;
        assert_ne!(state, KeyState::Enabled);
        let mut form = upload_form("other.raw", 10, "");
        form.encryption = "on".into();
        form.encryption_key = key.clone();
        assert!(matches!(
            s.create_image(&alice, &form).await,
            Err(ServiceError::Invalid(_))
        ));
        let back = if action == "disable" {
            "enable"
        } else {
            "cancel_deletion"
        };
        s.change_key(&alice, &key, back, "").await.unwrap();
        assert_eq!(fetch(&app, &owner_link.path, None).await.1, bytes);
        assert_eq!(fetch(&app, &bob_link.path, None).await.1, bytes);
    }
    // Each change is in the image's Work History.
    let history = s.image_history(&alice, &id, 1).await.unwrap();
    let changes = history
        .entries
        .iter()
        .filter(|e| e.topic == HistoryTopic::KeyChanged)
        .count();
    assert_eq!(changes, 4);
}

async fn rotation_rewraps_data_keys_and_a_deleted_key_fails_its_images(
    backend: crate::support::Backend,
) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let key = s.create_key(&alice, "rotating", "", false).await.unwrap();
    let bytes = payload(2 * SEG + 99);
    let id = encrypted_upload(&app, &alice, &key, &bytes).await;
    let stored_before = app.stored_bytes(&id).await;
    s.change_key(&alice, &key, "rotate", "").await.unwrap();
    // Re-wrapped right after the rotation, or by the next pass; the bytes are untouched.
    s.rewrap_stale_data_keys().await.unwrap();
    let image = s.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.encryption.unwrap().data_key_version, Some(2));
    let listed = s.list_keys(&alice).await.unwrap();
    assert_eq!(
        (listed[0].version, listed[0].images_on_older_versions),
        (2, 0)
    );
    assert_eq!(app.stored_bytes(&id).await, stored_before);
    assert_eq!(download(&app, &alice, &id, None).await.1, bytes);
    let history = s.image_history(&alice, &id, 1).await.unwrap();
    assert!(
        history
            .entries
            .iter()
            .any(|e| e.topic == HistoryTopic::DataKeyRewrapped)
    );

    // Deleted: its images are Failed, saying why, and can only be deleted.
    let link = s.create_download_link(&alice, &id).await.unwrap();
    s.change_key(&alice, &key, "schedule_deletion", "7")
        .await
        .unwrap();
    let later = image_console::service::now_ms() + 8 * 86_400_000;
    assert_eq!(s.delete_due_keys(later).await.unwrap(), 1);
    let image = s.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Failed);
    assert!(image.failure_reason.unwrap().contains("was deleted"));
    assert_eq!(image.encryption.unwrap().key.state, KeyState::Deleted);
    assert_eq!(fetch(&app, &link.path, None).await.0, StatusCode::FORBIDDEN);
    s.delete_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
}

/// Creates an unencrypted image from a local file and waits until it is Active.
async fn plain_upload(app: &TestApp, actor: &Actor, bytes: &[u8]) -> String {
    let s = &app.services;
    let form = upload_form("plain.raw", bytes.len() as u64, "");
    let id = s.create_image(actor, &form).await.unwrap();
    let upload = s
        .create_upload(actor, &id, bytes.len() as u64, "")
        .await
        .unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(bytes))]);
    s.append_upload(actor, &upload.id, 0, None, body)
        .await
        .unwrap();
    id
}

async fn replicate_in_each_direction_keeps_the_sha512(backend: crate::support::Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bytes = payload(3 * SEG + 321);
    let plain = plain_upload(&app, &alice, &bytes).await;
    s.put_image_tag(&alice, &plain, None, "env", "prod")
        .await
        .unwrap();
    let (a, b) = (
        s.create_key(&alice, "key-a", "", false).await.unwrap(),
        s.create_key(&alice, "key-b", "", false).await.unwrap(),
    );
    let source = s.get_image(&alice, &plain).await.unwrap();
    let sha512 = source.hash_value.clone().unwrap();

    // Unencrypted → encrypted, encrypted → unencrypted, and under another key.
    let steps = [
        (plain.clone(), "on", a.as_str(), Some(a.as_str())),
        (String::new(), "off", "", None),
        (String::new(), "on", b.as_str(), Some(b.as_str())),
    ];
    let mut previous = plain.clone();
    let mut first_replica = String::new();
    for (from, encryption, key, expected_key) in steps {
        let from = if from.is_empty() {
            first_replica.clone()
        } else {
            from
        };
        let name = format!("replica-{encryption}-{}", key.len());
        let replica = s
            .replicate_image(&alice, &from, &name, encryption, key)
            .await
            .unwrap();
        let image = app.wait_for_import(&alice, &replica).await;
        assert_eq!(image.status, ImageStatus::Active, "{image:?}");
        assert_eq!(image.hash_value.as_deref(), Some(sha512.as_str()));
        assert_eq!(image.replica_of(), Some(from.as_str()));
        assert_eq!(image.attributes.name, name);
        assert_eq!(image.attributes.min_disk_gb, source.attributes.min_disk_gb);
        assert_eq!(image.tags.len(), 1, "the tags are copied");
        assert_eq!(
            image.encryption.as_ref().map(|e| e.key.id.as_str()),
            expected_key
        );
        let stored = app.stored_bytes(&replica).await;
        assert_eq!(contains(&stored, &marker()), expected_key.is_none());
        assert_eq!(download(&app, &alice, &replica, None).await.1, bytes);
        let history = s.image_history(&alice, &replica, 1).await.unwrap();
        let created = history
            .entries
            .iter()
            .find(|e| e.topic == HistoryTopic::Created)
            .unwrap();
        assert!(created.message.contains("Replicated from"), "{created:?}");
        let origin = s.image_history(&alice, &from, 1).await.unwrap();
        assert!(
            origin
                .entries
                .iter()
                .any(|e| e.topic == HistoryTopic::Replicated)
        );
        if first_replica.is_empty() {
            first_replica = replica.clone();
        }
        previous = replica;
    }
    assert_ne!(previous, plain);

    // A replica encrypted exactly as its source is refused, as is a source not Active.
    for (from, encryption, key) in [
        (plain.as_str(), "off", ""),
        (first_replica.as_str(), "on", a.as_str()),
    ] {
        assert!(matches!(
            s.replicate_image(&alice, from, "same", encryption, key)
                .await,
            Err(ServiceError::Invalid(_))
        ));
    }
    // Another account cannot replicate it.
    let bob = app.sign_up("globex").await;
    assert!(matches!(
        s.replicate_image(&bob, &plain, "mine", "off", "").await,
        Err(ServiceError::NotFound(_))
    ));
}

async fn a_replicate_cut_off_by_a_restart_finishes_and_one_can_be_cancelled(
    backend: crate::support::Backend,
) {
    let mut settings = crate::support::test_settings();
    // 2 MiB a second: the copy takes a few seconds, long enough to be cut off.
    settings.limits.replicate_max_bytes_per_second = 2 << 20;
    let app = TestApp::spawn_with(backend, settings).await;
    let alice = app.sign_up("acme").await;
    let bytes = payload(4 << 20);
    let source = encrypted_upload(&app, &alice, "", &bytes).await;
    let replica = app
        .services
        .replicate_image(&alice, &source, "copy", "off", "")
        .await
        .unwrap();
    app.wait_until(&alice, &replica, |i| {
        i.progress.is_some_and(|p| p.bytes_done > 0)
    })
    .await;
    let app = app.restart().await;
    let image = app.wait_for_import(&alice, &replica).await;
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    assert_eq!(image.hash_value.unwrap(), sha512_hex(&bytes));
    assert_eq!(download(&app, &alice, &replica, None).await.1, bytes);
    let history = app
        .services
        .image_history(&alice, &replica, 1)
        .await
        .unwrap();
    let started = history
        .entries
        .iter()
        .filter(|e| e.topic == HistoryTopic::ImportStarted)
        .count();
    assert_eq!(started, 2, "it was started again after the restart");

    // Cancel Import stops a replica and leaves nothing behind.
    let cancelled = app
        .services
        .replicate_image(&alice, &source, "cancelled", "off", "")
        .await
        .unwrap();
    app.wait_until(&alice, &cancelled, |i| {
        i.progress.is_some_and(|p| p.bytes_done > 0)
    })
    .await;
    app.services
        .cancel_import(&alice, &cancelled)
        .await
        .unwrap();
    let image = app.services.get_image(&alice, &cancelled).await.unwrap();
    assert_eq!(image.status, ImageStatus::Failed);
    let (_, importing) = app.stored_files().await;
    assert!(importing.is_empty(), "{importing:?}");
}

on_every_backend!(
    replicate_in_each_direction_keeps_the_sha512,
    a_replicate_cut_off_by_a_restart_finishes_and_one_can_be_cancelled,
    encrypted_bytes_are_sealed_and_come_back_whole,
    an_upload_resumes_mid_segment_across_a_restart,
    tampered_bytes_end_the_download_before_a_wrong_byte,
    a_key_that_cannot_be_used_refuses_until_it_can,
    rotation_rewraps_data_keys_and_a_deleted_key_fails_its_images,
);
