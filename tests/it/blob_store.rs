//! The blob store's contract, the same on files and on S3: incoming bytes written in several
//! requests and resumed from their recorded state, assembled, read back in ranges, committed,
//! deleted; and incoming bytes removed before they were committed.

use futures::StreamExt;
use image_console::store::BlobStore;
use image_console::store::blobs::sealed::{self, DataKey, SEGMENT_BYTES, SegmentCipher};
use image_console::store::blobs::{Incoming, IncomingState};

use crate::support::{Backend, test_storage};

const MIB: usize = 1 << 20;

async fn store(backend: Backend, dir: &std::path::Path) -> BlobStore {
    let (location, aws) = test_storage(backend, dir);
    BlobStore::connect(&location, &aws).await.unwrap()
}

fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

/// Writes `bytes` from `offset` on, in pieces of an odd size, and finishes (`last`: the
/// stream's end).
async fn append(
    blobs: &BlobStore,
    id: &str,
    state: &IncomingState,
    (offset, bytes, last): (u64, &[u8], bool),
    seal: Option<&SegmentCipher>,
) -> IncomingState {
    let mut writer = blobs
        .open_writer(Incoming::Upload, id, state, offset, 64 << 20, seal)
        .await
        .unwrap()
        .expect("the bytes before the offset are there");
    let bytes = bytes.to_vec();
    let len = bytes.len() as u64;
    let (written, state) = tokio::task::spawn_blocking(move || {
        for piece in bytes.chunks(777_777) {
            writer.write(piece).unwrap();
        }
        writer.finish(last).unwrap()
    })
    .await
    .unwrap();
    // Plain bytes, sealed or not.
    assert_eq!(written, len);
    state
}

async fn read(
    blobs: &BlobStore,
    key: &str,
    seal: Option<(&SegmentCipher, u64)>,
    start: u64,
    len: u64,
) -> Vec<u8> {
    let mut reader = blobs.open_blob(key).await.unwrap();
    if let Some((cipher, plain_len)) = seal {
        reader = reader.sealed(cipher.clone(), plain_len);
    }
    let blocks: Vec<_> = reader.range(start, len).collect().await;
    blocks.into_iter().flat_map(|b| b.unwrap()).collect()
}

async fn writes_resume_assemble_read_and_delete(backend: Backend) {
    contract(backend, None).await;
}

/// The same, sealed: every request but the last ends at a segment boundary.
async fn sealed_writes_resume_and_read_in_ranges(backend: Backend) {
    contract(backend, Some(DataKey::generate().cipher())).await;
}

async fn contract(backend: Backend, seal: Option<SegmentCipher>) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(backend, dir.path()).await;
    let id = uuid::Uuid::new_v4().to_string();
    // Three requests: one that leaves less than a part, one that crosses parts, one short.
    let data = sample(19 * MIB + 4321);
    let cuts = match seal {
        None => [3 * MIB + 17, 15 * MIB + 5, data.len()],
        Some(_) => [
            3 * MIB + 5 * SEGMENT_BYTES,
            15 * MIB + SEGMENT_BYTES,
            data.len(),
        ],
    };
    let stored_len = |plain: usize, last: bool| match (&seal, last) {
        (None, _) => plain as u64,
        (Some(_), false) => sealed::sealed_offset(plain as u64),
        (Some(_), true) => sealed::sealed_len(plain as u64),
    };

    let mut state = blobs.begin_incoming(Incoming::Upload, &id).await.unwrap();
    // The recorded state survives the database's round trip.
    state = IncomingState::from_db(state.to_db().as_deref()).unwrap();
    let mut offset = 0;
    for (i, &cut) in cuts.iter().enumerate() {
        if i == 1 {
            // A request cut off before its offset was recorded: what it wrote never counts.
            let mut lost = blobs
                .open_writer(
                    Incoming::Upload,
                    &id,
                    &state,
                    offset as u64,
                    64 << 20,
                    seal.as_ref(),
                )
                .await
                .unwrap()
                .unwrap();
            tokio::task::spawn_blocking(move || {
                lost.write(&[0xEE; 9 * MIB]).unwrap();
                drop(lost);
            })
            .await
            .unwrap();
        }
        let last = cut == data.len();
        let next = append(
            &blobs,
            &id,
            &state,
            (offset as u64, &data[offset..cut], last),
            seal.as_ref(),
        )
        .await;
        state = IncomingState::from_db(next.to_db().as_deref()).unwrap();
        offset = cut;
        assert_eq!(
            blobs
                .incoming_len(Incoming::Upload, &id, &state)
                .await
                .unwrap(),
            Some(stored_len(offset, last))
        );
        // Only the recorded offset can be resumed from.
        if !last {
            let step = if seal.is_some() { SEGMENT_BYTES } else { 1 };
            assert!(
                blobs
                    .open_writer(
                        Incoming::Upload,
                        &id,
                        &state,
                        (offset + step) as u64,
                        64 << 20,
                        seal.as_ref(),
                    )
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    blobs.assemble(Incoming::Upload, &id, &state).await.unwrap();
    let stored_total = stored_len(data.len(), true);
    let head = blobs
        .read_incoming_range(Incoming::Upload, &id, &state, 0, 4 * MIB as u64)
        .await
        .unwrap();
    let tail = blobs
        .read_incoming_range(Incoming::Upload, &id, &state, stored_total - 512, 4096)
        .await
        .unwrap();
    if seal.is_none() {
        assert_eq!(head, &data[..4 * MIB]);
        assert_eq!(tail, &data[data.len() - 512..]);
    } else {
        // Sealed: nothing of the plain bytes shows.
        assert_eq!(head.len(), 4 * MIB);
        let marker = &data[MIB..MIB + 4096];
        assert!(!head.windows(marker.len()).any(|w| w == marker));
        assert_eq!(tail.len(), 512);
    }
    let key = blobs.commit(Incoming::Upload, &id, &state).await.unwrap();
    assert!(key.starts_with(&id));
    assert_eq!(blobs.blob_len(&key).await.unwrap(), Some(stored_total));
    let plain = seal.as_ref().map(|cipher| (cipher, data.len() as u64));
    let stored = blobs.list().await.unwrap();
    assert_eq!(stored.images, vec![key.clone()]);
    assert!(stored.uploads.is_empty() && stored.imports.is_empty());

    assert_eq!(read(&blobs, &key, plain, 0, data.len() as u64).await, data);
    for (start, len) in [
        (0, 1),
        (8 * MIB - 1, 2),
        (8 * MIB, 8 * MIB),
        (123, 17 * MIB),
        (data.len() - 1, 1),
    ] {
        assert_eq!(
            read(&blobs, &key, plain, start as u64, len as u64).await,
            &data[start..start + len],
            "{start}+{len}"
        );
    }

    blobs.remove_blob(&key).await.unwrap();
    assert_eq!(blobs.blob_len(&key).await.unwrap(), None);
    assert!(blobs.open_blob(&key).await.is_err());
    assert_eq!(blobs.list().await.unwrap().images, Vec::<String>::new());
    // Removing what is gone is no error.
    blobs.remove_blob(&key).await.unwrap();
}

async fn removed_incoming_bytes_leave_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(backend, dir.path()).await;
    // One import mid-way (parts and a tail), one assembled but never committed.
    let (midway, assembled) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let mut states = Vec::new();
    for id in [&midway, &assembled] {
        let state = blobs.begin_incoming(Incoming::Import, id).await.unwrap();
        let mut writer = blobs
            .open_writer(Incoming::Import, id, &state, 0, 64 << 20, None)
            .await
            .unwrap()
            .unwrap();
        let (_, state) = tokio::task::spawn_blocking(move || {
            writer.write(&sample(11 * MIB)).unwrap();
            writer.finish(true).unwrap()
        })
        .await
        .unwrap();
        states.push(state);
    }
    blobs
        .assemble(Incoming::Import, &assembled, &states[1])
        .await
        .unwrap();
    for (id, state) in [&midway, &assembled].into_iter().zip(&states) {
        blobs
            .remove_incoming(Incoming::Import, id, state)
            .await
            .unwrap();
    }
    let stored = blobs.list().await.unwrap();
    assert_eq!(stored, Default::default(), "nothing is left");
    // The removed upload can neither be read nor made into an image (assembled, which
    // the files backend does in place, then committed).
    let read_back = blobs
        .read_incoming_range(Incoming::Import, &midway, &states[0], 0, 4 * MIB as u64)
        .await;
    assert!(read_back.is_err(), "the removed upload was read back");
    let made = match blobs.assemble(Incoming::Import, &midway, &states[0]).await {
        Ok(()) => blobs.commit(Incoming::Import, &midway, &states[0]).await,
        Err(refused) => Err(refused),
    };
    assert!(made.is_err(), "the removed upload became {made:?}");
    assert_eq!(blobs.list().await.unwrap(), Default::default());
}

macro_rules! on_files_and_s3 {
    ($($name:ident),* $(,)?) => {
        mod files {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::S3).await
                }
            )*
        }
    };
}

on_files_and_s3!(
    writes_resume_assemble_read_and_delete,
    sealed_writes_resume_and_read_in_ranges,
    removed_incoming_bytes_leave_nothing,
);

/// An upload that ended without its bytes being removed (its process died in between) leaves
/// a recorded multipart upload: the sweep aborts it and removes its tail and its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_aborts_multipart_uploads_no_upload_needs() {
    let app = crate::support::TestApp::spawn(Backend::S3).await;
    let services = &app.services;
    let alice = app.sign_up("sweep").await;
    let len = 12 * MIB + 100;
    let id = services
        .create_image(
            &alice,
            &crate::uploads::upload_form("big.raw", len as u64, ""),
        )
        .await
        .unwrap();
    let upload = services
        .create_upload(&alice, &id, len as u64, "")
        .await
        .unwrap();
    // 10 MiB and a bit: an 8 MiB part and a tail.
    let piece = sample(10 * MIB + 3);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(piece))]);
    let info = services
        .append_upload(&alice, &upload.id, 0, None, body)
        .await
        .unwrap();
    assert_eq!(info.offset, 10 * MIB as u64 + 3);
    let recorded = services
        .store()
        .incoming_state(&id, Incoming::Upload)
        .await
        .unwrap()
        .expect("the multipart upload is recorded");
    let multipart: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    assert!(crate::support::s3_open_parts(&app.storage, &app.aws, &multipart) >= 1);
    assert_eq!(
        services.blobs().list().await.unwrap().uploads,
        vec![id.clone()]
    );

    // Nothing to sweep while the upload receives.
    assert_eq!(services.sweep_incoming().await.unwrap(), 0);
    // The upload ends, as a process that died before removing its bytes would leave it.
    sqlx::query("UPDATE uploads SET state = 'terminated' WHERE image_id = $1")
        .bind(&id)
        .execute(services.store().pool())
        .await
        .unwrap();
    assert_eq!(services.sweep_incoming().await.unwrap(), 1);
    assert_eq!(
        crate::support::s3_open_parts(&app.storage, &app.aws, &multipart),
        0,
        "aborted"
    );
    assert_eq!(services.blobs().list().await.unwrap(), Default::default());
    assert_eq!(
        services
            .store()
            .incoming_state(&id, Incoming::Upload)
            .await
            .unwrap(),
        None
    );
    assert_eq!(services.sweep_incoming().await.unwrap(), 0);
}
