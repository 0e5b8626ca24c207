//! Signed images, signed as Glance's documentation shows (`openssl dgst -sha256 -sign
//! key.pem -sigopt rsa_padding_mode:pss`, then `base64 -w 0`): a browser upload (tus, resumed
//! across a restart), a URL import and an image API PUT each verify before Active; a bad
//! signature, an unknown certificate and incomplete properties end Failed with their reason
//! and no bytes. The Certificates page's rules: what an upload refuses, and deleting only
//! while no image waiting for its bytes needs the certificate. On SQLite, PostgreSQL and S3.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use image_console::domain::image::{ImageDetail, ImageStatus};
use image_console::domain::list_query::ListQuery;
use image_console::domain::signature::{HashMethod, KeyType, SignatureForm};
use image_console::service::image_api::ApiChange;
use image_console::service::{Actor, ServiceError};
use reqwest::StatusCode;

use crate::support::{Backend, SourceServer, TestApp, create_form};
use crate::uploads::{LiveServer, Tus, client, header, qcow2_with_data, upload_form};
use crate::{on_both_databases, on_every_backend};

/// A signing key and its self-signed certificate, made with openssl.
pub(crate) struct Signer {
    dir: tempfile::TempDir,
    key_type: KeyType,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Signer {
    pub(crate) fn new(key_type: KeyType, subject: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let (key_s, cert_s) = (key.to_str().unwrap(), cert.to_str().unwrap());
        match key_type {
            KeyType::RsaPss => openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                key_s,
            ]),
            KeyType::EccSecp384r1 => openssl(&[
                "ecparam",
                "-name",
                "secp384r1",
                "-genkey",
                "-noout",
                "-out",
                key_s,
            ]),
            KeyType::EccSecp521r1 => openssl(&[
                "ecparam",
                "-name",
                "secp521r1",
                "-genkey",
                "-noout",
                "-out",
                key_s,
            ]),
        }
        openssl(&[
            "req", "-new", "-x509", "-key", key_s, "-out", cert_s, "-days", "30", "-subj", subject,
        ]);
        Self { dir, key_type }
    }

    pub(crate) fn certificate_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("cert.pem")).unwrap()
    }

    /// `openssl dgst -<hash> -sign key.pem [-sigopt rsa_padding_mode:pss]`, base64.
    pub(crate) fn sign(&self, file: &Path, method: HashMethod) -> String {
        let sig = self.dir.path().join("sig");
        let digest = format!("-{}", method.as_str().replace('-', "").to_lowercase());
        let key = self.dir.path().join("key.pem");
        let mut args = vec!["dgst", digest.as_str(), "-sign", key.to_str().unwrap()];
        if self.key_type == KeyType::RsaPss {
            args.extend(["-sigopt", "rsa_padding_mode:pss"]);
        }
        args.extend(["-out", sig.to_str().unwrap(), file.to_str().unwrap()]);
        openssl(&args);
        let out = Command::new("base64")
            .args(["-w", "0", sig.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

fn signature_form(
    certificate: &str,
    method: HashMethod,
    key_type: KeyType,
    signature: &str,
) -> SignatureForm {
    SignatureForm {
        certificate_id: certificate.into(),
        hash_method: method.as_str().into(),
        key_type: key_type.as_str().into(),
        signature: signature.into(),
    }
}

fn assert_verified(detail: &ImageDetail, subject: &str, method: HashMethod) {
    assert_eq!(
        detail.status,
        ImageStatus::Active,
        "{:?}",
        detail.failure_reason
    );
    let verified = detail.verified_signature.as_ref().expect("verified");
    assert!(
        verified.certificate_subject.contains(subject),
        "{verified:?}"
    );
    assert_eq!(verified.hash_method, method);
    assert_eq!(verified.certificate_fingerprint.len(), 95);
}

async fn assert_failed(app: &TestApp, actor: &Actor, id: &str, reason: &str) {
    let detail = app.wait_for_import(actor, id).await;
    assert_eq!(detail.status, ImageStatus::Failed);
    let failure = detail.failure_reason.unwrap_or_default();
    assert!(failure.contains(reason), "{failure}");
    assert!(detail.verified_signature.is_none());
    assert!(
        !app.stored_files().await.0.contains(&id.to_owned()),
        "no bytes kept"
    );
}

async fn signed_images_verify_on_every_way_in(backend: Backend) {
    let server = LiveServer::start(backend).await;
    let alice = server.app.sign_up("acme").await;
    let rsa = Signer::new(KeyType::RsaPss, "/CN=Release signing/O=Acme");
    let ec = Signer::new(KeyType::EccSecp384r1, "/CN=EC signing/O=Acme");
    let rsa_id = server
        .app
        .services
        .add_certificate(&alice, &rsa.certificate_pem())
        .await
        .unwrap();
    let ec_id = server
        .app
        .services
        .add_certificate(&alice, &ec.certificate_pem())
        .await
        .unwrap();
    let dir = server.app.data.path().to_path_buf();

    // A browser upload (tus), interrupted by a restart half-way: the hasher state saved with
    // the offset carries the signature's SHA-384, so the resumed upload still verifies.
    let image = qcow2_with_data(&dir, "upload.qcow2", 2);
    let file = dir.join("upload.qcow2");
    let mut form = upload_form("upload.qcow2", image.len() as u64, "");
    form.signature = signature_form(
        &ec_id,
        HashMethod::Sha384,
        KeyType::EccSecp384r1,
        &ec.sign(&file, HashMethod::Sha384),
    );
    let upload_id = server
        .app
        .services
        .create_image(&alice, &form)
        .await
        .unwrap();
    let id = upload_id.clone();
    let location = {
        let tus = Tus {
            base: &server.base,
            cookie: &alice.cookie,
            http: client(),
        };
        let created = tus.create(&id, image.len() as u64).await;
        let location = header(&created, "location").unwrap().to_owned();
        tus.patch(&location, 0, image[..700_000].to_vec()).await;
        location
    };
    // The certificate is needed until the bytes are in.
    let refused = server.app.services.delete_certificate(&alice, &ec_id).await;
    assert!(
        matches!(&refused, Err(ServiceError::Conflict(m)) if m.contains("1 image waiting")),
        "{refused:?}"
    );
    let server = server.restart().await;
    let tus = Tus {
        base: &server.base,
        cookie: &alice.cookie,
        http: client(),
    };
    let offset = tus.offset(&location).await;
    let done = tus
        .patch(&location, offset, image[offset as usize..].to_vec())
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let detail = server.app.services.get_image(&alice, &id).await.unwrap();
    assert_verified(&detail, "CN=EC signing", HashMethod::Sha384);
    let app = &server.app;
    let s = &app.services;

    // A URL import, RSA-PSS with SHA-256, as Glance's documentation signs.
    let source = SourceServer::start().await;
    let path = source.qcow2("signed.qcow2", "64M");
    let mut form = create_form("signed from a URL", &source.url("files", "signed.qcow2"));
    form.signature = signature_form(
        &rsa_id,
        HashMethod::Sha256,
        KeyType::RsaPss,
        &rsa.sign(&path, HashMethod::Sha256),
    );
    let id = s.create_image(&alice, &form).await.unwrap();
    let detail = app.wait_for_import(&alice, &id).await;
    assert_verified(&detail, "CN=Release signing", HashMethod::Sha256);

    // The image API: the four properties on create, then PUT /file (SHA-512 reuses the
    // image's own digest).
    let api_file = dir.join("api.qcow2");
    let api_bytes = qcow2_with_data(&dir, "api.qcow2", 1);
    let api_props = |signature: String, certificate: &str| {
        vec![
            ApiChange::Name("api signed".into()),
            ApiChange::SignatureProperty("img_signature".into(), Some(signature)),
            ApiChange::SignatureProperty(
                "img_signature_hash_method".into(),
                Some("SHA-512".into()),
            ),
            ApiChange::SignatureProperty("img_signature_key_type".into(), Some("RSA-PSS".into())),
            ApiChange::SignatureProperty(
                "img_signature_certificate_uuid".into(),
                Some(certificate.to_owned()),
            ),
        ]
    };
    let actor: &Actor = &alice;
    let put = |id: String, bytes: Vec<u8>| async move {
        let body = futures::stream::iter([Ok::<_, String>(Bytes::from(bytes.clone()))]);
        s.api_upload_image_data(actor, &id, Some(bytes.len() as u64), body)
            .await
    };
    let created = s
        .api_create_image(
            &alice,
            None,
            "qcow2",
            &api_props(rsa.sign(&api_file, HashMethod::Sha512), &rsa_id),
        )
        .await
        .unwrap();
    put(created.detail.id.clone(), api_bytes.clone())
        .await
        .unwrap();
    let detail = app.wait_for_import(&alice, &created.detail.id).await;
    assert_verified(&detail, "CN=Release signing", HashMethod::Sha512);

    // A signature of other bytes: Failed, nothing kept.
    let other = s
        .api_create_image(
            &alice,
            None,
            "qcow2",
            &api_props(rsa.sign(&file, HashMethod::Sha512), &rsa_id),
        )
        .await
        .unwrap();
    let _ = put(other.detail.id.clone(), api_bytes.clone()).await;
    assert_failed(
        app,
        &alice,
        &other.detail.id,
        "The signature does not verify",
    )
    .await;

    // A certificate the account does not hold.
    let unknown = s
        .api_create_image(
            &alice,
            None,
            "qcow2",
            &api_props(
                rsa.sign(&api_file, HashMethod::Sha512),
                "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab",
            ),
        )
        .await
        .unwrap();
    let _ = put(unknown.detail.id.clone(), api_bytes.clone()).await;
    assert_failed(
        app,
        &alice,
        &unknown.detail.id,
        "is not one of this account's certificates",
    )
    .await;

    // Incomplete: a signature without its certificate.
    let incomplete = s
        .api_create_image(
            &alice,
            None,
            "qcow2",
            &[
                ApiChange::Name("incomplete".into()),
                ApiChange::SignatureProperty(
                    "img_signature".into(),
                    Some(rsa.sign(&api_file, HashMethod::Sha256)),
                ),
            ],
        )
        .await
        .unwrap();
    let _ = put(incomplete.detail.id.clone(), api_bytes.clone()).await;
    assert_failed(
        app,
        &alice,
        &incomplete.detail.id,
        "img_signature_hash_method, img_signature_key_type, img_signature_certificate_uuid missing",
    )
    .await;

    // A bad signature by URL import: Failed too.
    let mut form = create_form("tampered", &source.url("files", "signed.qcow2"));
    form.signature = signature_form(
        &rsa_id,
        HashMethod::Sha256,
        KeyType::RsaPss,
        &rsa.sign(&api_file, HashMethod::Sha256),
    );
    let id = s.create_image(&alice, &form).await.unwrap();
    assert_failed(app, &alice, &id, "does not verify").await;

    // The Signed filter: the three verified images, not the four that failed.
    for (signed, expected) in [(Some(true), 3), (Some(false), 4), (None, 7)] {
        let query = ListQuery {
            signed,
            ..ListQuery::default()
        };
        let page = s.list_images(&alice, &query).await.unwrap();
        assert_eq!(page.total, expected, "signed {signed:?}");
        assert_eq!(page.images.len(), expected as usize);
    }
    let searched = ListQuery {
        signed: Some(true),
        search: "signed".into(),
        ..ListQuery::default()
    };
    assert_eq!(s.list_images(&alice, &searched).await.unwrap().total, 2);

    // Once nothing waits for it, the certificate may go; verified images keep its subject.
    s.delete_certificate(&alice, &ec_id).await.unwrap();
    let kept = s.get_image(&alice, &upload_id).await.unwrap();
    assert_verified(&kept, "CN=EC signing", HashMethod::Sha384);
}

async fn certificates_are_checked_and_scoped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("other").await;
    let signer = Signer::new(KeyType::EccSecp521r1, "/CN=Builds/O=Acme");
    let pem = signer.certificate_pem();
    let id = s.add_certificate(&alice, &pem).await.unwrap();
    let listed = s.list_certificates(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].subject, "O=Acme,CN=Builds");
    assert_eq!(listed[0].key_label(), "EC P-521");

    let invalid = |result: Result<String, ServiceError>| match result {
        Err(ServiceError::Invalid(errors)) => errors[0].message.clone(),
        other => panic!("{other:?}"),
    };
    assert!(invalid(s.add_certificate(&alice, &pem).await).contains("uploaded already"));
    assert!(invalid(s.add_certificate(&alice, "not a certificate").await).contains("not PEM"));
    let testdata =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/service/signatures/testdata");
    let expired = std::fs::read_to_string(testdata.join("expired.pem")).unwrap();
    assert!(invalid(s.add_certificate(&alice, &expired).await).contains("expired on 2021-01-01"));
    let p256 = std::fs::read_to_string(testdata.join("p256.pem")).unwrap();
    assert!(invalid(s.add_certificate(&alice, &p256).await).contains("EC P-256"));

    // Another account neither sees it nor may sign with it or delete it.
    assert!(s.list_certificates(&bob).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_certificate(&bob, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    let mut form = create_form("bob image", "http://example.com/a.qcow2");
    form.signature = signature_form(
        &id,
        HashMethod::Sha256,
        KeyType::EccSecp521r1,
        &"QUJD".repeat(30),
    );
    let refused = s.create_image(&bob, &form).await;
    assert!(
        matches!(&refused, Err(ServiceError::Invalid(e)) if e[0].message.contains("this account's certificates")),
        "{refused:?}"
    );
    // The form refuses a key type the certificate does not hold.
    form.signature.key_type = "RSA-PSS".into();
    let refused = s.create_image(&alice, &form).await;
    assert!(
        matches!(&refused, Err(ServiceError::Invalid(e)) if e[0].message.contains("holds an EC P-521 key")),
        "{refused:?}"
    );

    // The image API may set the properties only while the image waits for its data.
    let created = s
        .api_create_image(&alice, None, "qcow2", &[ApiChange::Name("late".into())])
        .await
        .unwrap();
    let bad = s
        .api_update_image(
            &alice,
            &created.detail.id,
            &[ApiChange::SignatureProperty(
                "img_signature_hash_method".into(),
                Some("MD5".into()),
            )],
        )
        .await;
    assert!(
        matches!(&bad, Err(ServiceError::Invalid(e)) if e[0].message.contains("SHA-224, SHA-256")),
        "{bad:?}"
    );
    let set = s
        .api_update_image(
            &alice,
            &created.detail.id,
            &[ApiChange::SignatureProperty(
                "img_signature_certificate_uuid".into(),
                Some(id.clone()),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        set.detail.signature.certificate_id.as_deref(),
        Some(id.as_str())
    );
    assert!(matches!(
        s.delete_certificate(&alice, &id).await,
        Err(ServiceError::Conflict(_))
    ));
    s.api_update_image(
        &alice,
        &created.detail.id,
        &[ApiChange::SignatureProperty(
            "img_signature_certificate_uuid".into(),
            None,
        )],
    )
    .await
    .unwrap();
    s.delete_certificate(&alice, &id).await.unwrap();
    assert!(s.list_certificates(&alice).await.unwrap().is_empty());
}

on_every_backend!(signed_images_verify_on_every_way_in);

mod rules {
    use super::*;
    on_both_databases!(certificates_are_checked_and_scoped);
}
