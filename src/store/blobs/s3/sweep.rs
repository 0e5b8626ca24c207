//! What the bucket holds, and the sweeps: objects no row names (left by a process that died
//! before its row was written) and multipart uploads the database never recorded. The
//! multipart listing is signed by `object_store`'s own SigV4 signer.

use std::collections::HashSet;
use std::io;

use futures::TryStreamExt;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use super::{S3, SWEEP_MIN_AGE, ignore_missing, image_id_of, to_io};
use crate::store::blobs::StoredBlobs;

/// ListMultipartUploads' answer, as far as the sweep reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<ListedUpload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedUpload {
    key: String,
    upload_id: String,
    /// ISO 8601 in UTC, `2026-12-03T09:00:00.000Z`.
    initiated: String,
}

/// The listed uploads to abort: under `prefix` (whatever the store answered, nothing else is
/// the console's), not recorded, and begun before `cutoff` (compared to the second, both
/// `YYYY-MM-DDTHH:MM:SS`).
fn abandoned<'a>(
    listed: &'a [ListedUpload],
    prefix: &'a str,
    recorded: &'a HashSet<String>,
    cutoff: &'a str,
) -> impl Iterator<Item = &'a ListedUpload> {
    listed.iter().filter(move |upload| {
        upload.key.starts_with(prefix)
            && upload.key.len() > prefix.len()
            && !recorded.contains(&upload.upload_id)
            && upload
                .initiated
                .get(..19)
                .is_some_and(|began| began < &cutoff[..19])
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a time, in UTC.
fn iso_seconds(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

impl S3 {
    /// Every object under the prefix, as (path below the prefix, last modified).
    async fn objects(&self, under: &str) -> io::Result<Vec<(String, i64)>> {
        let root = self.path("");
        let strip = |location: &Path| -> String {
            let full = location.as_ref();
            match root.as_ref() {
                "" => full.to_owned(),
                root => full
                    .strip_prefix(root)
                    .unwrap_or(full)
                    .trim_start_matches('/')
                    .to_owned(),
            }
        };
        self.store
            .list(Some(&self.path(under)))
            .map_ok(|meta| (strip(&meta.location), meta.last_modified.timestamp_millis()))
            .try_collect()
            .await
            .map_err(to_io)
    }

    pub(in crate::store::blobs) async fn list(&self) -> io::Result<StoredBlobs> {
        let mut stored = StoredBlobs::default();
        for (path, _) in self.objects("images").await? {
            stored
                .images
                .extend(path.strip_prefix("images/").map(str::to_owned));
        }
        stored.images.dedup();
        for (path, _) in self.objects("incoming").await? {
            let mut parts = path.split('/').skip(1);
            let (Some(kind), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let list = match kind {
                "upload" => &mut stored.uploads,
                _ => &mut stored.imports,
            };
            list.push(image_id_of(id).to_owned());
        }
        stored.images.sort();
        stored.imports.sort();
        stored.imports.dedup();
        stored.uploads.sort();
        stored.uploads.dedup();
        Ok(stored)
    }

    /// Aborts the multipart uploads S3 lists under `images/` that the database never recorded
    /// (`recorded` upload ids) and that began over an hour ago: those of a process that died
    /// between creating one and recording it. `None` when the store does not list multipart
    /// uploads (s3s-fs does not).
    pub(in crate::store::blobs) async fn sweep_unrecorded_multiparts(
        &self,
        recorded: &HashSet<String>,
    ) -> io::Result<Option<usize>> {
        let Some(listed) = self.list_multipart_uploads().await? else {
            return Ok(None);
        };
        let cutoff = iso_seconds(std::time::SystemTime::now() - SWEEP_MIN_AGE);
        let prefix = self.multipart_prefix();
        let mut aborted = 0;
        for upload in abandoned(&listed, &prefix, recorded, &cutoff) {
            let path = Path::from(upload.key.as_str());
            ignore_missing(self.store.abort_multipart(&path, &upload.upload_id).await)?;
            aborted += 1;
        }
        Ok(Some(aborted))
    }

    /// Where the console's multipart uploads are: `<prefix>/images/`.
    fn multipart_prefix(&self) -> String {
        self.path("images").to_string() + "/"
    }

    /// ListMultipartUploads under `images/`, page by page, signed by `object_store`'s own
    /// SigV4 signer with the store's credentials.
    async fn list_multipart_uploads(&self) -> io::Result<Option<Vec<ListedUpload>>> {
        let prefix = self.multipart_prefix();
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(to_io)?;
        let mut listed = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..100 {
            let mut url = url::Url::parse(&format!("{}?uploads", self.bucket_url))
                .map_err(io::Error::other)?;
            url.query_pairs_mut().append_pair("prefix", &prefix);
            if let Some((key, id)) = &markers {
                url.query_pairs_mut()
                    .append_pair("key-marker", key)
                    .append_pair("upload-id-marker", id);
            }
            let mut request = object_store::client::HttpRequest::new(bytes::Bytes::new().into());
            *request.uri_mut() = url.as_str().parse().map_err(io::Error::other)?;
            object_store::aws::AwsAuthorizer::new(&credential, "s3", &self.region)
                .authorize(&mut request, None);
            let mut outgoing = self.http.get(url.as_str());
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            let response = outgoing.send().await.map_err(io::Error::other)?;
            let status = response.status();
            let body = response.text().await.map_err(io::Error::other)?;
            if !status.is_success() {
                // NotImplemented, or a policy without s3:ListBucketMultipartUploads.
                tracing::debug!(%status, "the store does not list multipart uploads");
                return Ok(None);
            }
            let page: ListMultipartUploadsResult =
                quick_xml::de::from_str(&body).map_err(io::Error::other)?;
            listed.extend(page.uploads);
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(id)) => markers = Some((key, id)),
                _ => break,
            }
        }
        Ok(Some(listed))
    }

    pub(in crate::store::blobs) async fn sweep_orphans(
        &self,
        live_keys: &HashSet<String>,
        live_uploads: &HashSet<String>,
    ) -> io::Result<usize> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let old = now_ms - SWEEP_MIN_AGE.as_millis() as i64;
        let mut removed = 0;
        for (path, modified) in self.objects("images").await? {
            let key = path.strip_prefix("images/").unwrap_or(&path);
            if modified < old && !live_keys.contains(key) {
                ignore_missing(self.store.delete(&self.path(&path)).await)?;
                removed += 1;
            }
        }
        for (path, modified) in self.objects("incoming").await? {
            let mut parts = path.split('/').skip(1);
            let (kind, key) = (parts.next(), parts.next().unwrap_or_default());
            let live = kind == Some("upload") && live_uploads.contains(image_id_of(key));
            if modified < old && !live {
                ignore_missing(self.store.delete(&self.path(&path)).await)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn listed_uploads_are_parsed_and_only_old_unrecorded_ones_go() {
        // As S3 documents ListMultipartUploads' answer.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>images</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>console/images/c</NextKeyMarker>
  <NextUploadIdMarker>id-c</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>console/images/a</Key>
    <UploadId>id-a</UploadId>
    <Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass>
    <Initiated>2026-12-03T08:00:00.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>console/images/b</Key>
    <UploadId>id-b</UploadId>
    <Initiated>2026-12-03T08:30:00.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>console/images/c</Key>
    <UploadId>id-c</UploadId>
    <Initiated>2026-12-03T09:30:00.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(body).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("console/images/c"));
        assert_eq!(page.uploads.len(), 3);
        let recorded = HashSet::from(["id-b".to_owned()]);
        let gone: Vec<&str> = abandoned(
            &page.uploads,
            "console/images/",
            &recorded,
            "2026-12-03T09:00:00",
        )
        .map(|u| u.upload_id.as_str())
        .collect();
        // b is recorded, c is too recent.
        assert_eq!(gone, ["id-a"]);
        // Keys outside the console's prefix are never the console's, whatever the store says.
        let none = HashSet::new();
        let elsewhere: Vec<&str> =
            abandoned(&page.uploads, "other/images/", &none, "2026-12-03T10:00:00")
                .map(|u| u.upload_id.as_str())
                .collect();
        assert!(elsewhere.is_empty());
        let empty: ListMultipartUploadsResult = quick_xml::de::from_str(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.uploads.is_empty() && !empty.is_truncated);
        assert_eq!(
            iso_seconds(std::time::UNIX_EPOCH + Duration::from_secs(1_796_381_376)),
            "2026-12-04T10:49:36"
        );
    }
}
