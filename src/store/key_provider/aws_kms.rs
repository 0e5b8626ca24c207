//! The AWS KMS key provider: the KMS JSON API (`POST /` with `X-Amz-Target:
//! TrentService.<Action>`), signed with `object_store`'s SigV4 signer and the credentials its
//! builder finds from the standard `AWS_*` variables (keys, session token, instance role). It
//! works with AWS KMS and with servers that speak its API (`KMS_ENDPOINT_URL`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use object_store::CredentialProvider;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use serde_json::{Value, json};

/// `KEY_PROVIDER=aws-kms`'s settings.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKmsSettings {
    /// `KMS_ENDPOINT_URL`; `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`; `us-east-1` when neither is set).
    pub region: String,
    /// The `AWS_*` variables: credentials (name and value).
    pub aws: Vec<(String, String)>,
}

impl std::fmt::Debug for AwsKmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("aws", &self.aws.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

type Credentials = Arc<dyn CredentialProvider<Credential = AwsCredential>>;

#[derive(Clone)]
pub(super) struct AwsKms {
    endpoint: String,
    region: String,
    credentials: Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKms")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The encryption context every data key is bound to: the console key it belongs to.
fn context(key_id: &str) -> Value {
    json!({ "image-console-key": key_id })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl AwsKms {
    /// The client for `settings`.
    pub(super) fn new(settings: &AwsKmsSettings) -> anyhow::Result<Self> {
        // The S3 builder is used only for its credential chain; no bucket is ever contacted.
        let mut builder = AmazonS3Builder::new().with_bucket_name("kms-credentials");
        for (name, value) in &settings.aws {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let credentials = builder
            .with_region(&settings.region)
            .build()?
            .credentials()
            .clone();
        let endpoint = settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com", settings.region));
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned() + "/",
            region: settings.region.clone(),
            credentials,
            // Signed for one address: a redirect elsewhere is not followed.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    pub(super) fn describe(&self) -> String {
        format!("AWS KMS at {} ({})", self.endpoint, self.region)
    }

    /// One call: the action's JSON answer, or an error with KMS's own type and message.
    async fn call(&self, action: &str, body: Value) -> io::Result<Value> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| io::Error::other(format!("AWS credentials for KMS: {e}")))?;
        let payload = bytes::Bytes::from(serde_json::to_vec(&body)?);
        let mut request = object_store::client::HttpRequest::new(payload.clone().into());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.endpoint.parse().map_err(io::Error::other)?;
        let headers = request.headers_mut();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            http::HeaderValue::from_str(&format!("TrentService.{action}"))
                .map_err(io::Error::other)?,
        );
        object_store::aws::AwsAuthorizer::new(&credential, "kms", &self.region)
            .authorize(&mut request, None);
        let mut outgoing = self.http.post(&self.endpoint).body(payload);
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name, value);
        }
        let response = outgoing
            .send()
            .await
            .map_err(|e| io::Error::other(format!("KMS {action}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| io::Error::other(format!("KMS {action}: {e}")))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let kind = answer["__type"].as_str().unwrap_or("error");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let message = answer["message"]
                .as_str()
                .or(answer["Message"].as_str())
                .unwrap_or("");
            return Err(io::Error::other(format!(
                "KMS {action} answered {status} {kind}: {message}"
            )));
        }
        Ok(answer)
    }

    fn field<'a>(answer: &'a Value, action: &str, name: &str) -> io::Result<&'a str> {
        answer[name]
            .as_str()
            .ok_or_else(|| io::Error::other(format!("KMS {action}'s answer has no {name}")))
    }

    /// Creates a symmetric key; returns its KeyId (which every KMS call takes, as an ARN).
    pub(super) async fn create_key(&self, description: &str) -> io::Result<String> {
        let answer = self
            .call(
                "CreateKey",
                json!({
                    "Description": description,
                    "KeyUsage": "ENCRYPT_DECRYPT",
                    "KeySpec": "SYMMETRIC_DEFAULT",
                }),
            )
            .await?;
        Ok(Self::field(&answer["KeyMetadata"], "CreateKey", "KeyId")?.to_owned())
    }

    pub(super) async fn set_enabled(&self, kms_key: &str, enabled: bool) -> io::Result<()> {
        let action = if enabled { "EnableKey" } else { "DisableKey" };
        self.call(action, json!({ "KeyId": kms_key })).await?;
        Ok(())
    }

    pub(super) async fn schedule_deletion(&self, kms_key: &str, days: u32) -> io::Result<()> {
        self.call(
            "ScheduleKeyDeletion",
            json!({ "KeyId": kms_key, "PendingWindowInDays": days }),
        )
        .await?;
        Ok(())
    }

    /// Cancels a deletion; KMS leaves the key disabled, so one that was enabled is enabled.
    pub(super) async fn cancel_deletion(&self, kms_key: &str, enable: bool) -> io::Result<()> {
        self.call("CancelKeyDeletion", json!({ "KeyId": kms_key }))
            .await?;
        if enable {
            self.set_enabled(kms_key, true).await?;
        }
        Ok(())
    }

    /// Turns on KMS's yearly rotation and rotates now where KMS can (RotateKeyOnDemand):
    /// KMS keeps every earlier backing key, so data keys wrapped before still open.
    pub(super) async fn rotate(&self, kms_key: &str) -> io::Result<()> {
        self.call("EnableKeyRotation", json!({ "KeyId": kms_key }))
            .await?;
        if let Err(e) = self
            .call("RotateKeyOnDemand", json!({ "KeyId": kms_key }))
            .await
        {
            tracing::info!(error = %e, "KMS did not rotate on demand; its yearly rotation is on");
        }
        Ok(())
    }

    /// A new data key: its 32 bytes and the ciphertext blob to store.
    pub(super) async fn generate_data_key(
        &self,
        kms_key: &str,
        key_id: &str,
    ) -> io::Result<(zeroize::Zeroizing<Vec<u8>>, String)> {
        let answer = self
            .call(
                "GenerateDataKey",
                json!({
                    "KeyId": kms_key,
                    "KeySpec": "AES_256",
                    "EncryptionContext": context(key_id),
                }),
            )
            .await?;
        let plain = zeroize::Zeroizing::new(
            b64()
                .decode(Self::field(&answer, "GenerateDataKey", "Plaintext")?)
                .map_err(io::Error::other)?,
        );
        let blob = Self::field(&answer, "GenerateDataKey", "CiphertextBlob")?.to_owned();
        Ok((plain, blob))
    }

    /// A data key's 32 bytes from its ciphertext blob.
    pub(super) async fn decrypt(
        &self,
        kms_key: &str,
        key_id: &str,
        blob: &str,
    ) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        let answer = self
            .call(
                "Decrypt",
                json!({
                    "KeyId": kms_key,
                    "CiphertextBlob": blob,
                    "EncryptionContext": context(key_id),
                }),
            )
            .await?;
        Ok(zeroize::Zeroizing::new(
            b64()
                .decode(Self::field(&answer, "Decrypt", "Plaintext")?)
                .map_err(io::Error::other)?,
        ))
    }

    /// Wraps a data key's bytes again under the key's current backing key.
    pub(super) async fn encrypt(
        &self,
        kms_key: &str,
        key_id: &str,
        plain: &[u8],
    ) -> io::Result<String> {
        let answer = self
            .call(
                "Encrypt",
                json!({
                    "KeyId": kms_key,
                    "Plaintext": b64().encode(plain),
                    "EncryptionContext": context(key_id),
                }),
            )
            .await?;
        Ok(Self::field(&answer, "Encrypt", "CiphertextBlob")?.to_owned())
    }
}
