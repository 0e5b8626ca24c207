//! An image row as the database holds it: its columns, and how it becomes the list's
//! summary and the Details page's image.

use super::*;
use crate::domain::conversion::{ConvertTo, SourceFile};
use crate::domain::image::ImageEncryption;
use crate::domain::keys::{KeyRef, KeyState};
use crate::domain::signature::{HashMethod, KeyType, SignatureProperties, VerifiedSignature};

pub(in crate::store) const COLUMNS: &str = "i.seq, i.id, i.account_id, i.name, i.description, i.os_type, i.os_version, i.min_disk_gb, \
    i.min_ram_gb, i.visibility, i.protected, i.architecture, i.boot_mode, i.features, i.status, \
    i.failure_reason, i.image_type, i.source_url, i.source_file_name, i.disk_format, i.size_bytes, \
    i.virtual_size_bytes, i.hash_algo, i.hash_value, i.checksum_md5, i.expected_checksum, i.declared_format, i.blob_key, i.bytes_done, \
    i.bytes_total, i.import_attempts, i.link_generation, i.created_by, i.created_at, \
    i.updated_by, i.updated_at, i.source_image_id, i.deleted_at, i.deleted_by, i.restore_status, \
    i.destroy_at, i.encryption_key_id, i.data_key_version, i.data_key_wrapped, i.data_key_nonce, \
    i.data_key_format, i.convert_to, i.source_disk_format, i.source_size_bytes, i.source_sha512, \
    i.source_md5, i.signature, i.signature_hash_method, i.signature_key_type, \
    i.signature_certificate_id, i.signature_verified_at, i.signature_subject, i.signature_fingerprint, \
    i.deprecate_at, i.os_hidden";

/// The columns of `ImageAttributes`, in the order `bind_attributes` binds them.
pub(super) const ATTRIBUTE_COLUMNS: &str = "name, description, os_type, min_disk_gb, min_ram_gb, protected, architecture, boot_mode, features";

/// Binds an image's attributes in the order of `ATTRIBUTE_COLUMNS`.
pub(super) fn bind_attributes<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    a: &'q ImageAttributes,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&a.name)
        .bind(&a.description)
        .bind(stored_os_type(a.os.as_ref()))
        .bind(to_i64(a.min_disk_gb))
        .bind(to_i64(a.min_ram_gb))
        .bind(i64::from(a.protected))
        .bind(a.architecture.as_str())
        .bind(a.boot_mode.as_str())
        .bind(a.features.to_db())
}

/// The System version as stored: NULL when not specified. (Written beside
/// `ATTRIBUTE_COLUMNS`, which every statement numbers its parameters after.)
pub(super) fn os_version(a: &ImageAttributes) -> Option<String> {
    a.os.as_ref()
        .and_then(|os| os.version.as_ref())
        .map(|v| v.as_str().to_owned())
}

/// Reads an image's attributes from a row selected with `COLUMNS`.
pub(super) fn attributes_from_row(r: &AnyRow) -> sqlx::Result<ImageAttributes> {
    let text = |c: &str| r.try_get::<String, _>(c);
    let os_type = text("os_type")?;
    let os = if os_type == UNSPECIFIED_OS_TYPE {
        None
    } else {
        let platform =
            OsPlatform::from_value(&os_type).ok_or_else(|| decode_error("os_type", &os_type))?;
        let version = match r.try_get::<Option<String>, _>("os_version")? {
            None => None,
            Some(v) => Some(
                OsVersion::stored(platform, &v).ok_or_else(|| decode_error("os_version", &v))?,
            ),
        };
        Some(OperatingSystem { platform, version })
    };
    let architecture = text("architecture")?;
    let boot_mode = text("boot_mode")?;
    Ok(ImageAttributes {
        name: text("name")?,
        description: text("description")?,
        os,
        min_disk_gb: to_u64(r.try_get("min_disk_gb")?),
        min_ram_gb: to_u64(r.try_get("min_ram_gb")?),
        protected: r.try_get::<i64, _>("protected")? != 0,
        architecture: Architecture::parse(&architecture)
            .map_err(|_| decode_error("architecture", &architecture))?,
        boot_mode: BootMode::parse(&boot_mode)
            .map_err(|_| decode_error("boot_mode", &boot_mode))?,
        features: Features::from_db(&text("features")?),
    })
}

pub(in crate::store) fn decode_error(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unexpected value {value:?}").into(),
    }
}

/// The Recycle Bin's columns of a row selected with `COLUMNS`: all set, or none.
pub(super) fn deleted_from_row(r: &AnyRow) -> sqlx::Result<Option<DeletedInfo>> {
    let deleted_at: Option<i64> = r.try_get("deleted_at")?;
    let deleted_by: Option<String> = r.try_get("deleted_by")?;
    let restore_status: Option<String> = r.try_get("restore_status")?;
    let destroy_at: Option<i64> = r.try_get("destroy_at")?;
    let (Some(deleted_at_ms), Some(deleted_by), Some(restore), Some(destroy_at_ms)) =
        (deleted_at, deleted_by, restore_status, destroy_at)
    else {
        return Ok(None);
    };
    Ok(Some(DeletedInfo {
        deleted_at_ms,
        deleted_by,
        restores_to: ImageStatus::from_db(&restore)
            .ok_or_else(|| decode_error("restore_status", &restore))?,
        destroy_at_ms,
    }))
}

/// The file as received of a converted image: all its columns set, or none.
fn source_file_from_row(r: &AnyRow) -> sqlx::Result<Option<SourceFile>> {
    let format: Option<String> = r.try_get("source_disk_format")?;
    let size: Option<i64> = r.try_get("source_size_bytes")?;
    let sha512: Option<String> = r.try_get("source_sha512")?;
    let md5: Option<String> = r.try_get("source_md5")?;
    let (Some(format), Some(size), Some(sha512), Some(md5)) = (format, size, sha512, md5) else {
        return Ok(None);
    };
    Ok(Some(SourceFile {
        disk_format: DiskFormat::from_db(&format)
            .ok_or_else(|| decode_error("source_disk_format", &format))?,
        size_bytes: to_u64(size),
        sha512,
        md5,
    }))
}

/// Glance's signature properties as set (each column NULL when not).
pub(in crate::store) fn signature_properties_from_row(
    r: &AnyRow,
) -> sqlx::Result<SignatureProperties> {
    let hash_method: Option<String> = r.try_get("signature_hash_method")?;
    let key_type: Option<String> = r.try_get("signature_key_type")?;
    Ok(SignatureProperties {
        signature: r.try_get("signature")?,
        hash_method: hash_method.and_then(|m| HashMethod::parse(&m).ok()),
        key_type: key_type.and_then(|k| KeyType::parse(&k).ok()),
        certificate_id: r.try_get("signature_certificate_id")?,
    })
}

/// The signature properties as set, and the verification's record: set together, or none.
fn signature_from_row(
    r: &AnyRow,
) -> sqlx::Result<(SignatureProperties, Option<VerifiedSignature>)> {
    let properties = signature_properties_from_row(r)?;
    let verified_at: Option<i64> = r.try_get("signature_verified_at")?;
    let subject: Option<String> = r.try_get("signature_subject")?;
    let fingerprint: Option<String> = r.try_get("signature_fingerprint")?;
    let verified = match (
        verified_at,
        subject,
        fingerprint,
        properties.hash_method,
        properties.key_type,
    ) {
        (Some(verified_at_ms), Some(subject), Some(fingerprint), Some(hash), Some(key)) => {
            Some(VerifiedSignature {
                verified_at_ms,
                certificate_subject: subject,
                certificate_fingerprint: fingerprint,
                hash_method: hash,
                key_type: key,
            })
        }
        _ => None,
    };
    Ok((properties, verified))
}

impl ImageRow {
    pub(in crate::store) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let text = |c: &str| r.try_get::<String, _>(c);
        let visibility = text("visibility")?;
        let status = text("status")?;
        let disk_format: Option<String> = r.try_get("disk_format")?;
        let opt_u64 = |c: &str| -> sqlx::Result<Option<u64>> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(to_u64))
        };
        let (signature, verified_signature) = signature_from_row(r)?;
        Ok(Self {
            seq: r.try_get("seq")?,
            id: text("id")?,
            account_id: text("account_id")?,
            attributes: attributes_from_row(r)?,
            visibility: Visibility::parse(&visibility)
                .map_err(|_| decode_error("visibility", &visibility))?,
            status: ImageStatus::from_db(&status).ok_or_else(|| decode_error("status", &status))?,
            failure_reason: r.try_get("failure_reason")?,
            image_type: text("image_type")?,
            source_url: r.try_get("source_url")?,
            source_file_name: r.try_get("source_file_name")?,
            disk_format: match disk_format {
                Some(f) => {
                    Some(DiskFormat::from_db(&f).ok_or_else(|| decode_error("disk_format", &f))?)
                }
                None => None,
            },
            size_bytes: opt_u64("size_bytes")?,
            virtual_size_bytes: opt_u64("virtual_size_bytes")?,
            hash_algo: r.try_get("hash_algo")?,
            hash_value: r.try_get("hash_value")?,
            checksum_md5: r.try_get("checksum_md5")?,
            expected_checksum: r.try_get("expected_checksum")?,
            declared_format: match r.try_get::<Option<String>, _>("declared_format")? {
                Some(f) => {
                    DiskFormat::from_db(&f).ok_or_else(|| decode_error("declared_format", &f))?
                }
                None => DiskFormat::Qcow2,
            },
            blob_key: r.try_get("blob_key")?,
            bytes_done: to_u64(r.try_get("bytes_done")?),
            bytes_total: opt_u64("bytes_total")?,
            import_attempts: u32::try_from(r.try_get::<i64, _>("import_attempts")?)
                .unwrap_or(u32::MAX),
            link_generation: r.try_get("link_generation")?,
            created_by: text("created_by")?,
            created_at_ms: r.try_get("created_at")?,
            updated_by: text("updated_by")?,
            updated_at_ms: r.try_get("updated_at")?,
            source_image_id: r.try_get("source_image_id")?,
            deleted: deleted_from_row(r)?,
            encryption_key_id: r.try_get("encryption_key_id")?,
            data_key: crate::store::keys::WrappedDataKey::from_row(r)?,
            convert_to: ConvertTo::from_db(
                r.try_get::<Option<String>, _>("convert_to")?.as_deref(),
            ),
            source_file: source_file_from_row(r)?,
            signature,
            verified_signature,
            deprecate_at_ms: r.try_get("deprecate_at")?,
            os_hidden: r.try_get::<i64, _>("os_hidden")? != 0,
        })
    }

    /// What an image made through the image API (no URL, no local file, no source image)
    /// waits for from its client, if anything.
    pub fn api_wait(&self) -> Option<ApiWait> {
        if self.source_url.is_some()
            || self.source_file_name.is_some()
            || self.source_image_id.is_some()
        {
            return None;
        }
        match self.status {
            ImageStatus::Queued => Some(ApiWait::Data),
            ImageStatus::Uploading => Some(ApiWait::Import),
            _ => None,
        }
    }

    pub(super) fn progress(&self) -> Option<ImportProgress> {
        if self.api_wait().is_some() {
            return None;
        }
        matches!(
            self.status,
            ImageStatus::Importing | ImageStatus::Uploading | ImageStatus::Converting
        )
        .then_some(ImportProgress {
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
        })
    }

    /// The owner's Account ID when `viewer` is another account (a recipient of a share).
    pub(super) fn shared_by(&self, viewer: &str) -> Option<String> {
        (self.account_id != viewer).then(|| self.account_id.clone())
    }

    /// The row as a line of `viewer`'s Image List.
    pub fn into_summary(self, viewer: &str) -> ImageSummary {
        ImageSummary {
            shared_by: self.shared_by(viewer),
            progress: self.progress(),
            api_wait: self.api_wait(),
            id: self.id,
            name: self.attributes.name,
            os: self.attributes.os,
            status: self.status,
            visibility: self.visibility,
            protected: self.attributes.protected,
            size_bytes: self.size_bytes,
            failure_reason: self.failure_reason,
            source_file_name: self.source_file_name,
            created_at_ms: self.created_at_ms,
            encrypted: self.encryption_key_id.is_some(),
            deprecate_at_ms: self.deprecate_at_ms,
            // Judged by the service, at its clock.
            deprecated: false,
            hidden: self.os_hidden,
        }
    }

    /// The row as Image Details shows it, whole. What another account may see of it is the
    /// service's rule (`service::shares::as_seen_by_recipient`).
    pub fn into_detail(self, tags: Vec<TagPair>, active_shares: u64) -> ImageDetail {
        ImageDetail {
            progress: self.progress(),
            api_wait: self.api_wait(),
            srn: image_srn(&self.account_id, &self.id),
            id: self.id,
            account_id: self.account_id,
            attributes: self.attributes,
            status: self.status,
            failure_reason: self.failure_reason,
            image_type: self.image_type,
            source_url: self.source_url,
            source_file_name: self.source_file_name,
            size_bytes: self.size_bytes,
            virtual_size_bytes: self.virtual_size_bytes,
            disk_format: self.disk_format,
            hash_algorithm: self.hash_algo,
            hash_value: self.hash_value,
            checksum_md5: self.checksum_md5,
            expected_checksum: self
                .expected_checksum
                .as_deref()
                .and_then(crate::domain::checksum::ExpectedChecksum::from_db),
            visibility: self.visibility,
            tags,
            created_by: self.created_by,
            created_at_ms: self.created_at_ms,
            updated_by: self.updated_by,
            updated_at_ms: self.updated_at_ms,
            shared_by: None,
            active_shares,
            source_image_id: self.source_image_id,
            deleted: self.deleted,
            references: Vec::new(),
            // The key's name and state come from its row (`Services::get_image`).
            encryption: self.encryption_key_id.map(|id| ImageEncryption {
                key: KeyRef {
                    id,
                    name: String::new(),
                    state: KeyState::Enabled,
                    deletion_at_ms: None,
                },
                data_key_version: self.data_key.map(|k| k.version),
            }),
            convert_to: self.convert_to,
            source_file: self.source_file,
            signature: self.signature,
            verified_signature: self.verified_signature,
            // The service reads the ancestors (`Services::get_image`).
            lineage: Vec::new(),
            deprecate_at_ms: self.deprecate_at_ms,
            // Judged by the service, at its clock.
            deprecated: false,
            hidden: self.os_hidden,
        }
    }
}
