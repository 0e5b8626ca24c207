//! `KEY_PROVIDER=aws-kms` against a real KMS API server (moto, which scripts/test starts):
//! keys are KMS keys, data keys come from GenerateDataKey and open with Decrypt, rotation
//! re-wraps them, and the console enforces a disabled key although moto would still decrypt.

use bytes::Bytes;
use image_console::domain::image::ImageStatus;
use image_console::domain::keys::KeyState;
use image_console::service::ServiceError;
use image_console::store::key_provider::{AwsKmsSettings, KeyProviderSettings};
use sha2::{Digest, Sha512};

use crate::support::{Backend, TestApp, test_settings};
use crate::uploads::upload_form;

fn kms_settings() -> KeyProviderSettings {
    let endpoint = std::env::var("TEST_KMS_ENDPOINT")
        .expect("the KMS tests need TEST_KMS_ENDPOINT (scripts/test starts moto and sets it)");
    KeyProviderSettings::AwsKms(AwsKmsSettings {
        endpoint: Some(endpoint),
        region: "us-east-1".into(),
        aws: vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ],
    })
}

async fn kms_keys_encrypt_rotate_and_refuse(backend: Backend) {
    let mut settings = test_settings();
    settings.keys = kms_settings();
    let app = TestApp::spawn_with(backend, settings).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let key = s.create_key(&alice, "kms-key", "", true).await.unwrap();
    let listed = s.list_keys(&alice).await.unwrap().remove(0);
    assert_eq!(listed.provider, "AWS KMS");
    assert!(
        !listed.provider_key_id.is_empty(),
        "the KMS key's id is kept"
    );
    // Only a KMS ciphertext blob is stored: no key material of the console's own.
    let material: Option<String> =
        sqlx::query_scalar("SELECT material FROM encryption_key_versions WHERE key_id = $1")
            .bind(&key)
            .fetch_one(s.store().pool())
            .await
            .unwrap();
    assert_eq!(material, None);

    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut form = upload_form("disk.raw", bytes.len() as u64, "");
    form.encryption = "on".into();
    let id = s.create_image(&alice, &form).await.unwrap();
    let upload = s
        .create_upload(&alice, &id, bytes.len() as u64, "")
        .await
        .unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes.clone()))]);
    s.append_upload(&alice, &upload.id, 0, None, body)
        .await
        .unwrap();
    let image = s.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Active, "{image:?}");
    assert_eq!(image.encryption.as_ref().unwrap().key.id, key);
    assert_eq!(
        image.hash_value.unwrap(),
        hex::encode(Sha512::digest(&bytes))
    );
    let read = |app: &TestApp| {
        let id = id.clone();
        let alice = alice.clone();
        let services = app.services.clone();
        async move {
            use futures::StreamExt;
            let file = services.api_image_data(&alice, &id).await?;
            let blocks: Vec<_> = file.blob.range(0, file.size_bytes).collect().await;
            Ok::<Vec<u8>, ServiceError>(blocks.into_iter().flat_map(|b| b.unwrap()).collect())
        }
    };
    assert_eq!(read(&app).await.unwrap(), bytes);

    // Rotation: KMS rotates its key; the data key is wrapped again, the bytes untouched.
    let stored = app.stored_bytes(&id).await;
    s.change_key(&alice, &key, "rotate", "").await.unwrap();
    s.rewrap_stale_data_keys().await.unwrap();
    let image = s.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.encryption.unwrap().data_key_version, Some(2));
    assert_eq!(app.stored_bytes(&id).await, stored);
    assert_eq!(read(&app).await.unwrap(), bytes);

    // Disabled: refused by the console, although moto would still decrypt; enabled again.
    s.change_key(&alice, &key, "disable", "").await.unwrap();
    match read(&app).await {
        Err(ServiceError::Forbidden(reason)) => assert!(reason.contains("disabled"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    s.change_key(&alice, &key, "enable", "").await.unwrap();
    assert_eq!(read(&app).await.unwrap(), bytes);
    // Scheduled for deletion in KMS and cancelled: enabled again there and here.
    s.change_key(&alice, &key, "schedule_deletion", "7")
        .await
        .unwrap();
    s.change_key(&alice, &key, "cancel_deletion", "")
        .await
        .unwrap();
    assert_eq!(
        s.list_keys(&alice).await.unwrap()[0].state,
        KeyState::Enabled
    );
    assert_eq!(read(&app).await.unwrap(), bytes);
}

crate::on_both_databases!(kms_keys_encrypt_rotate_and_refuse);
