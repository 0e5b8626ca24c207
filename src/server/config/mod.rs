//! Configuration from the environment: typed, with defaults that start a console on SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::service::{AbuseLimits, ServiceSettings};
use crate::store::blobs::StorageLocation;
use crate::store::key_provider::{AwsKmsSettings, KeyProviderSettings, MasterKeys};

/// Everything the server reads from the environment.
pub struct Config {
    /// `DATABASE_URL`: `sqlite://…` (default: a file in the data directory) or `postgres://…`.
    pub database_url: SecretString,
    /// `DATA_DIR`: image bytes, the SQLite file and the generated session secret.
    pub data_dir: PathBuf,
    /// `STORAGE_URL`: where image bytes are kept: `file:///path` (default: `blobs` in the data
    /// directory) or `s3://bucket/prefix`, with the `AWS_*` variables for the endpoint and
    /// credentials.
    pub storage: StorageLocation,
    /// The `AWS_*` variables, for an S3 `STORAGE_URL`.
    pub aws: Vec<(String, String)>,
    /// `BIND_ADDR`: where to listen.
    pub bind_addr: SocketAddr,
    /// `SITE_ROOT`: the folder `scripts/build` fills (`pkg/` with the wasm, JS and CSS).
    pub site_root: PathBuf,
    /// `SECURE_COOKIES`: mark the session cookie Secure (set when served over HTTPS).
    pub secure_cookies: bool,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `REQUEST_BODY_LIMIT`: the largest body of a page or server-function request.
    pub request_body_limit_bytes: u64,
    /// `REQUEST_HEADER_TIMEOUT_SECONDS`: how long a connection may take to send a request's
    /// headers (also the idle time allowed between requests on a kept-alive connection).
    pub request_header_timeout: Duration,
    /// What the service layer reads: `PRICE_PER_GB_MONTH`, `CURRENCY`, `IMPORT_SIZE_LIMIT`,
    /// `IMPORT_CONCURRENCY`, `IMPORT_ALLOWED_NETWORKS`, `MAX_IMAGES_PER_ACCOUNT`,
    /// `MAX_STORAGE_PER_ACCOUNT`, `SESSION_TTL_HOURS`, `UPLOAD_EXPIRY_MINUTES`,
    /// `SESSION_SECRET` (at least 32 bytes, base64; generated and kept in the data directory
    /// when absent), `LEASE_SECONDS`, the limits (see `AbuseLimits` for each variable) and
    /// the key provider (`KEY_PROVIDER`, `MASTER_KEY`, `MASTER_KEY_FILE`, `KMS_ENDPOINT_URL`).
    pub service: ServiceSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database", &redact_url(self.database_url.expose_secret()))
            .field("data_dir", &self.data_dir)
            .field("storage", &self.storage)
            .field("bind_addr", &self.bind_addr)
            .field("site_root", &self.site_root)
            .field("secure_cookies", &self.secure_cookies)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("request_body_limit_bytes", &self.request_body_limit_bytes)
            .field("request_header_timeout", &self.request_header_timeout)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A bad setting: which variable, what was wrong, and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: String,
}

/// Looks a variable up; empty counts as unset.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn parse_var<T>(
    var: Lookup<'_>,
    name: &'static str,
    default: T,
    expected: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => parse(&value).ok_or(ConfigError {
            name,
            value,
            expected: expected.to_owned(),
        }),
    }
}

/// Parses `64GiB`, `500 MB`, `1073741824`; units are binary or decimal as written.
pub fn parse_size(raw: &str) -> Option<u64> {
    raw.trim()
        .parse::<bytesize::ByteSize>()
        .ok()
        .map(|b| b.as_u64())
}

impl Config {
    /// Reads the environment. Nothing is required; every bad value is an error naming it.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self::from_vars(&|name| std::env::var(name).ok())?;
        config.aws = std::env::vars()
            .filter(|(name, value)| name.starts_with("AWS_") && !value.is_empty())
            .collect();
        if let KeyProviderSettings::AwsKms(kms) = &mut config.service.keys {
            kms.aws = config.aws.clone();
        }
        Ok(config)
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_vars(lookup: Lookup<'_>) -> anyhow::Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let var: Lookup<'_> = &var;
        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".to_owned()));
        let database_url = var("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("console.db").display()));
        if crate::store::Backend::from_url(&database_url).is_none() {
            return Err(ConfigError {
                name: "DATABASE_URL",
                value: redact_url(&database_url),
                expected: "a sqlite:// or postgres:// URL".into(),
            }
            .into());
        }
        let storage = match var("STORAGE_URL") {
            None => StorageLocation::Files(data_dir.join("blobs")),
            Some(value) => StorageLocation::parse(&value).map_err(|reason| ConfigError {
                name: "STORAGE_URL",
                value: value.clone(),
                expected: reason,
            })?,
        };
        let bind_addr = parse_var(
            var,
            "BIND_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 3000)),
            "an address and port such as 127.0.0.1:3000",
            |v| v.parse().ok(),
        )?;
        let secure_cookies = parse_var(var, "SECURE_COOKIES", false, "true or false", |v| match v
            .to_ascii_lowercase()
            .as_str()
        {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        })?;
        let price_per_gb_month = parse_var(
            var,
            "PRICE_PER_GB_MONTH",
            0.05,
            "a non-negative decimal number such as 0.05",
            |v| v.parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0),
        )?;
        let currency = parse_var(
            var,
            "CURRENCY",
            "USD".to_owned(),
            "1 to 8 letters such as USD",
            |v| {
                (!v.is_empty() && v.len() <= 8 && v.chars().all(|c| c.is_ascii_alphabetic()))
                    .then(|| v.to_ascii_uppercase())
            },
        )?;
        let import_size_limit_bytes = parse_var(
            var,
            "IMPORT_SIZE_LIMIT",
            64 << 30,
            "a size such as 64GiB or 500MB",
            |v| parse_size(v).filter(|n| *n > 0),
        )?;
        let import_concurrency = parse_var(
            var,
            "IMPORT_CONCURRENCY",
            2,
            "a whole number from 1 to 64",
            |v| v.parse::<usize>().ok().filter(|n| (1..=64).contains(n)),
        )?;
        let lease_seconds = parse_var(
            var,
            "LEASE_SECONDS",
            30,
            "a whole number of seconds from 3 to 600",
            |v| v.parse::<u64>().ok().filter(|n| (3..=600).contains(n)),
        )?;
        let import_allowed_networks = parse_var(
            var,
            "IMPORT_ALLOWED_NETWORKS",
            Vec::new(),
            "comma-separated networks or addresses such as 10.20.0.0/16,127.0.0.1",
            |v| crate::service::url_guard::parse_networks(v).ok(),
        )?;
        let max_images_per_account = parse_var(
            var,
            "MAX_IMAGES_PER_ACCOUNT",
            1000,
            "a whole number of images, at least 1",
            |v| v.parse::<u64>().ok().filter(|n| *n >= 1),
        )?;
        let max_storage_bytes_per_account = parse_var(
            var,
            "MAX_STORAGE_PER_ACCOUNT",
            1 << 40,
            "a size such as 1TiB or 500GB",
            |v| parse_size(v).filter(|n| *n > 0),
        )?;
        let session_ttl_hours = parse_var(
            var,
            "SESSION_TTL_HOURS",
            24 * 7,
            "a whole number of hours from 1 to 8760",
            |v| v.parse::<u64>().ok().filter(|n| (1..=8760).contains(n)),
        )?;
        let upload_expiry_minutes = parse_var(
            var,
            "UPLOAD_EXPIRY_MINUTES",
            24 * 60,
            "a whole number of minutes from 1 to 43200 (30 days)",
            |v| v.parse::<u64>().ok().filter(|n| (1..=43_200).contains(n)),
        )?;
        let trusted_proxies = parse_var(
            var,
            "TRUSTED_PROXIES",
            Vec::new(),
            "comma-separated networks or addresses of your reverse proxies, such as 10.0.0.0/8",
            |v| crate::service::url_guard::parse_networks(v).ok(),
        )?;
        let request_body_limit_bytes = parse_var(
            var,
            "REQUEST_BODY_LIMIT",
            1 << 20,
            "a size from 4KiB to 64MiB such as 1MiB",
            |v| parse_size(v).filter(|n| (4 << 10..=64 << 20).contains(n)),
        )?;
        let request_header_timeout = seconds(var, "REQUEST_HEADER_TIMEOUT_SECONDS", 20, 1..=600)?;
        let limits = abuse_limits(var)?;
        let site_root = PathBuf::from(
            var("SITE_ROOT")
                .or_else(|| var("LEPTOS_SITE_ROOT"))
                .unwrap_or_else(|| "target/site".to_owned()),
        );
        create_private_dir(&data_dir)
            .with_context(|| format!("creating DATA_DIR {}", data_dir.display()))?;
        let session_secret = match var("SESSION_SECRET") {
            Some(value) => decode_secret(&value).ok_or(ConfigError {
                name: "SESSION_SECRET",
                value: "(hidden)".into(),
                expected: "at least 32 bytes, base64-encoded".into(),
            })?,
            None => load_or_create_secret(&data_dir.join("session-secret"))?,
        };
        let keys = key_provider(var, &data_dir)?;
        let conversion = conversion_settings(var, &data_dir)?;
        Ok(Self {
            database_url: SecretString::from(database_url),
            data_dir,
            storage,
            aws: Vec::new(),
            bind_addr,
            site_root,
            secure_cookies,
            trusted_proxies,
            request_body_limit_bytes,
            request_header_timeout,
            service: ServiceSettings {
                price_per_gb_month,
                currency,
                import_size_limit_bytes,
                import_concurrency,
                import_allowed_networks,
                max_images_per_account,
                max_storage_bytes_per_account,
                session_ttl: Duration::from_secs(session_ttl_hours * 3600),
                upload_expiry: Duration::from_secs(upload_expiry_minutes * 60),
                session_secret,
                limits,
                lease_ttl: Duration::from_secs(lease_seconds),
                clock: Default::default(),
                keys,
                conversion,
            },
        })
    }
}

/// `CONVERT_TO` (`none`, `qcow2` or `raw`), `SCRATCH_DIR` (default `scratch` in the data
/// directory), `SCRATCH_MAX_BYTES` (a size; 0 or unset: the filesystem's free space) and
/// `QEMU_IMG` (the program, default `qemu-img` on the PATH).
fn conversion_settings(
    var: Lookup<'_>,
    data_dir: &std::path::Path,
) -> anyhow::Result<crate::service::importer::ConversionSettings> {
    use crate::domain::conversion::ConvertTo;
    let default = parse_var(
        var,
        "CONVERT_TO",
        ConvertTo::Keep,
        "none, qcow2 or raw",
        |v| ConvertTo::parse(v).ok().flatten(),
    )?;
    let scratch_max_bytes = parse_var(
        var,
        "SCRATCH_MAX_BYTES",
        0,
        "a size such as 100GiB, or 0 for the filesystem's free space",
        |v| {
            if v.trim() == "0" {
                Some(0)
            } else {
                parse_size(v)
            }
        },
    )?;
    let scratch_dir = var("SCRATCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("scratch"));
    create_private_dir(&scratch_dir)
        .with_context(|| format!("creating SCRATCH_DIR {}", scratch_dir.display()))?;
    Ok(crate::service::importer::ConversionSettings {
        default,
        scratch_dir,
        scratch_max_bytes,
        qemu_img: var("QEMU_IMG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("qemu-img")),
    })
}

/// `KEY_PROVIDER` (`local`, the default, or `aws-kms`) and its settings: for `local` the
/// master key, from `MASTER_KEY` or else `MASTER_KEY_FILE` (default `master-key` in the data
/// directory, generated at first start); for `aws-kms` `KMS_ENDPOINT_URL` and the region.
fn key_provider(
    var: Lookup<'_>,
    data_dir: &std::path::Path,
) -> anyhow::Result<KeyProviderSettings> {
    match var("KEY_PROVIDER").as_deref() {
        None | Some("local") => {
            if let Some(value) = var("MASTER_KEY") {
                let keys = MasterKeys::parse(&value).map_err(|expected| ConfigError {
                    name: "MASTER_KEY",
                    value: "(hidden)".into(),
                    expected: format!(
                        "{expected}; the form is 1:<base64 of 32 bytes>[,2:<base64>…]"
                    ),
                })?;
                return Ok(KeyProviderSettings::Local(keys));
            }
            let path = var("MASTER_KEY_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("master-key"));
            Ok(KeyProviderSettings::Local(load_or_create_master_key(
                &path,
            )?))
        }
        Some("aws-kms") => {
            let endpoint = var("KMS_ENDPOINT_URL");
            if let Some(endpoint) = &endpoint
                && !url::Url::parse(endpoint)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            {
                return Err(ConfigError {
                    name: "KMS_ENDPOINT_URL",
                    value: endpoint.clone(),
                    expected:
                        "an http:// or https:// URL such as https://kms.eu-west-1.amazonaws.com"
                            .into(),
                }
                .into());
            }
            Ok(KeyProviderSettings::AwsKms(AwsKmsSettings {
                endpoint,
                region: var("AWS_REGION")
                    .or_else(|| var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".into()),
                aws: Vec::new(),
            }))
        }
        Some(other) => Err(ConfigError {
            name: "KEY_PROVIDER",
            value: other.to_owned(),
            expected: "local or aws-kms".into(),
        }
        .into()),
    }
}

/// Reads the master key file, or creates one with version 1, readable only by this user.
fn load_or_create_master_key(path: &std::path::Path) -> anyhow::Result<MasterKeys> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return MasterKeys::parse(&text)
            .map_err(|e| anyhow::anyhow!("MASTER_KEY_FILE {}: {e}", path.display()));
    }
    let keys = MasterKeys::generate();
    write_private_file(path, keys.to_text().as_bytes(), true)
        .with_context(|| format!("creating MASTER_KEY_FILE {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a master key; back it up: without it no encrypted image can be read");
    Ok(keys)
}

/// Adds a version to the master key file (`image-console rotate-master-key`); the console
/// re-wraps every key's material under it when it next starts. Refused when `MASTER_KEY`
/// is set, since the environment of every console process must then change.
pub fn rotate_master_key_file() -> anyhow::Result<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("MASTER_KEY").is_some() {
        anyhow::bail!(
            "MASTER_KEY is set, so the master key is not in a file: add a new version to MASTER_KEY (such as ,2:<base64 of 32 random bytes>) on every console process and restart them"
        );
    }
    let path = var("MASTER_KEY_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".into())).join("master-key")
        });
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading MASTER_KEY_FILE {}", path.display()))?;
    let keys = MasterKeys::parse(&text)
        .map_err(|e| anyhow::anyhow!("MASTER_KEY_FILE {}: {e}", path.display()))?
        .with_new_version();
    let temporary = path.with_extension("new");
    let _ = std::fs::remove_file(&temporary);
    write_private_file(&temporary, keys.to_text().as_bytes(), true)?;
    std::fs::rename(&temporary, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(format!(
        "{} now holds master key version {}; restart the console to re-wrap every key under it, and back the file up.",
        path.display(),
        keys.current()
    ))
}

/// A whole number within `range`.
fn whole<T>(
    var: Lookup<'_>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let expected = format!("a whole number from {} to {}", range.start(), range.end());
    parse_var(var, name, default, &expected, |v| {
        v.parse::<T>().ok().filter(|n| range.contains(n))
    })
}

/// A number of seconds within `range`.
fn seconds(
    var: Lookup<'_>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    whole(var, name, default, range).map(Duration::from_secs)
}

fn abuse_limits(var: Lookup<'_>) -> Result<AbuseLimits, ConfigError> {
    let d = AbuseLimits::default();
    Ok(AbuseLimits {
        sign_in_per_address_per_minute: whole(
            var,
            "SIGN_IN_PER_ADDRESS_PER_MINUTE",
            d.sign_in_per_address_per_minute,
            1..=100_000,
        )?,
        sign_in_per_user_per_minute: whole(
            var,
            "SIGN_IN_PER_USER_PER_MINUTE",
            d.sign_in_per_user_per_minute,
            1..=100_000,
        )?,
        sign_up_per_address_per_hour: whole(
            var,
            "SIGN_UP_PER_ADDRESS_PER_HOUR",
            d.sign_up_per_address_per_hour,
            1..=100_000,
        )?,
        api_token_failures_per_address_per_minute: whole(
            var,
            "API_TOKEN_FAILURES_PER_ADDRESS_PER_MINUTE",
            d.api_token_failures_per_address_per_minute,
            1..=100_000,
        )?,
        password_hash_concurrency: whole(
            var,
            "PASSWORD_HASH_CONCURRENCY",
            d.password_hash_concurrency,
            1..=256,
        )?,
        session_idle: Duration::from_secs(
            whole(
                var,
                "SESSION_IDLE_HOURS",
                d.session_idle.as_secs() / 3600,
                1..=8760,
            )? * 3600,
        ),
        upload_idle: seconds(
            var,
            "UPLOAD_IDLE_SECONDS",
            d.upload_idle.as_secs(),
            1..=3600,
        )?,
        upload_patches: whole(var, "UPLOAD_PATCHES_MAX", d.upload_patches, 1..=100_000)?,
        upload_patches_per_account: whole(
            var,
            "UPLOAD_PATCHES_PER_ACCOUNT",
            d.upload_patches_per_account,
            1..=10_000,
        )?,
        imports_per_account: whole(var, "IMPORTS_PER_ACCOUNT", d.imports_per_account, 1..=64)?,
        import_min_bytes_per_second: parse_var(
            var,
            "IMPORT_MIN_SPEED",
            d.import_min_bytes_per_second,
            "a size per second such as 64KiB (0 turns the check off)",
            parse_size,
        )?,
        import_min_speed_window: seconds(
            var,
            "IMPORT_MIN_SPEED_WINDOW_SECONDS",
            d.import_min_speed_window.as_secs(),
            1..=86_400,
        )?,
        replicate_max_bytes_per_second: parse_var(
            var,
            "REPLICATE_MAX_SPEED",
            d.replicate_max_bytes_per_second,
            "a size per second such as 200MiB (0: no limit)",
            parse_size,
        )?,
    })
}

/// Creates the data directory readable by this user only: it holds the session secret, the
/// SQLite file and every image. An existing directory is left as it is, with a warning if
/// others can read it.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let existed = path.is_dir();
    builder.create(path)?;
    #[cfg(unix)]
    if existed {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "DATA_DIR can be read by other users; chmod 700 it"
            );
        }
    }
    Ok(())
}

fn decode_secret(value: &str) -> Option<SecretSlice<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .filter(|b| b.len() >= 32)?;
    Some(SecretSlice::from(bytes))
}

/// Reads the persisted secret, or creates one readable only by this user.
fn load_or_create_secret(path: &std::path::Path) -> anyhow::Result<SecretSlice<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode_secret(&text)
            .with_context(|| format!("{} does not hold a valid secret", path.display()));
    }
    let mut bytes = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    write_private_file(path, encoded.as_bytes(), false)?;
    Ok(SecretSlice::from(bytes))
}

/// Creates a file readable only by this user, with `contents`, made durable (its directory
/// too when `sync_dir`). It must not exist.
fn write_private_file(
    path: &std::path::Path,
    contents: &[u8],
    sync_dir: bool,
) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, contents)?;
    file.sync_all()?;
    if sync_dir && let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
