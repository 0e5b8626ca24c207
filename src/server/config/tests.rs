use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_size("64GiB"), Some(64 << 30));
    assert_eq!(parse_size("1 MiB"), Some(1 << 20));
    assert_eq!(parse_size("1000"), Some(1000));
    assert_eq!(parse_size("lots"), None);
}

#[test]
fn redacts_passwords() {
    assert_eq!(
        redact_url("postgres://app:hunter2@db:5432/app"),
        "postgres://app:***@db:5432/app"
    );
    assert_eq!(
        redact_url("sqlite://data/console.db"),
        "sqlite://data/console.db"
    );
}

#[test]
fn secrets_are_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session-secret");
    let first = load_or_create_secret(&path).unwrap();
    let second = load_or_create_secret(&path).unwrap();
    assert_eq!(first.expose_secret(), second.expose_secret());
    assert_eq!(first.expose_secret().len(), 32);
    std::fs::write(&path, "short").unwrap();
    assert!(load_or_create_secret(&path).is_err());
}

fn config_with(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut all: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.entry("DATA_DIR".into())
        .or_insert_with(|| dir.display().to_string());
    Config::from_vars(&|name| all.get(name).cloned())
}

#[test]
fn defaults_start_on_sqlite_in_the_data_dir() {
    let config = config_with(&[]).unwrap();
    assert!(config.database_url.expose_secret().starts_with("sqlite://"));
    assert!(config.database_url.expose_secret().ends_with("console.db"));
    assert_eq!(config.bind_addr.to_string(), "127.0.0.1:3000");
    assert_eq!(config.service.import_size_limit_bytes, 64 << 30);
    assert!(
        config.service.import_allowed_networks.is_empty(),
        "no network is allowed by default"
    );
    assert_eq!(config.service.price_per_gb_month, 0.05);
    assert!(!config.secure_cookies);
    assert!(config.data_dir.join("session-secret").exists());
}

#[cfg(unix)]
#[test]
fn the_data_dir_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("nested").join("data");
    let data_text = data.display().to_string();
    Config::from_vars(&|name| (name == "DATA_DIR").then(|| data_text.clone())).unwrap();
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

#[test]
fn limits_have_their_defaults_and_are_parsed() {
    let defaults = config_with(&[]).unwrap();
    assert_eq!(defaults.request_body_limit_bytes, 1 << 20);
    assert_eq!(defaults.request_header_timeout, Duration::from_secs(20));
    assert!(defaults.trusted_proxies.is_empty());
    assert_eq!(defaults.service.limits.sign_in_per_address_per_minute, 20);
    assert_eq!(defaults.service.limits.sign_in_per_user_per_minute, 10);
    assert_eq!(defaults.service.limits.sign_up_per_address_per_hour, 10);
    assert_eq!(
        defaults
            .service
            .limits
            .api_token_failures_per_address_per_minute,
        30
    );
    assert_eq!(
        defaults.service.limits.session_idle,
        Duration::from_secs(12 * 3600)
    );
    assert_eq!(defaults.service.limits.upload_idle, Duration::from_secs(60));
    assert_eq!(defaults.service.limits.imports_per_account, 2);
    assert_eq!(
        defaults.service.limits.import_min_bytes_per_second,
        64 << 10
    );
    let set = config_with(&[
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ("REQUEST_BODY_LIMIT", "2MiB"),
        ("SIGN_IN_PER_ADDRESS_PER_MINUTE", "5"),
        ("SESSION_IDLE_HOURS", "1"),
        ("UPLOAD_IDLE_SECONDS", "15"),
        ("UPLOAD_PATCHES_PER_ACCOUNT", "8"),
        ("IMPORT_MIN_SPEED", "0"),
    ])
    .unwrap();
    assert_eq!(set.trusted_proxies, ["10.0.0.0/8".parse().unwrap()]);
    assert_eq!(set.request_body_limit_bytes, 2 << 20);
    assert_eq!(set.service.limits.sign_in_per_address_per_minute, 5);
    assert_eq!(set.service.limits.session_idle, Duration::from_secs(3600));
    assert_eq!(set.service.limits.upload_idle, Duration::from_secs(15));
    assert_eq!(set.service.limits.upload_patches_per_account, 8);
    assert_eq!(set.service.limits.import_min_bytes_per_second, 0);
}

#[test]
fn bad_values_name_the_variable() {
    let cases = [
        ("DATABASE_URL", "mysql://x"),
        ("BIND_ADDR", "localhost"),
        ("SECURE_COOKIES", "maybe"),
        ("PRICE_PER_GB_MONTH", "-1"),
        ("PRICE_PER_GB_MONTH", "NaN"),
        ("CURRENCY", "US$"),
        ("IMPORT_SIZE_LIMIT", "huge"),
        ("IMPORT_SIZE_LIMIT", "0"),
        ("IMPORT_CONCURRENCY", "0"),
        ("IMPORT_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("IMPORT_ALLOWED_NETWORKS", "127.0.0.1,intranet"),
        ("SESSION_TTL_HOURS", "0"),
        ("MAX_IMAGES_PER_ACCOUNT", "0"),
        ("MAX_STORAGE_PER_ACCOUNT", "plenty"),
        ("SESSION_SECRET", "c2hvcnQ="),
        ("TRUSTED_PROXIES", "the load balancer"),
        ("REQUEST_BODY_LIMIT", "1GiB"),
        ("REQUEST_HEADER_TIMEOUT_SECONDS", "0"),
        ("SIGN_IN_PER_ADDRESS_PER_MINUTE", "0"),
        ("SIGN_IN_PER_USER_PER_MINUTE", "-3"),
        ("SIGN_UP_PER_ADDRESS_PER_HOUR", "many"),
        ("API_TOKEN_FAILURES_PER_ADDRESS_PER_MINUTE", "0"),
        ("PASSWORD_HASH_CONCURRENCY", "0"),
        ("SESSION_IDLE_HOURS", "0"),
        ("UPLOAD_IDLE_SECONDS", "99999"),
        ("UPLOAD_PATCHES_MAX", "0"),
        ("UPLOAD_PATCHES_PER_ACCOUNT", "x"),
        ("IMPORTS_PER_ACCOUNT", "65"),
        ("IMPORT_MIN_SPEED", "fast"),
        ("IMPORT_MIN_SPEED_WINDOW_SECONDS", "0"),
    ];
    for (name, value) in cases {
        let error = config_with(&[(name, value)]).err().unwrap().to_string();
        assert!(
            error.starts_with(&format!("{name}=")),
            "{name}={value}: {error}"
        );
    }
}

#[test]
fn values_are_parsed() {
    let config = config_with(&[
        ("BIND_ADDR", "127.0.0.1:4123"),
        ("IMPORT_SIZE_LIMIT", "2GiB"),
        ("PRICE_PER_GB_MONTH", "0.1"),
        ("CURRENCY", "eur"),
        ("SECURE_COOKIES", "true"),
        ("IMPORT_ALLOWED_NETWORKS", "10.20.0.0/16, 127.0.0.1"),
    ])
    .unwrap();
    assert_eq!(
        config.service.import_allowed_networks,
        [
            "10.20.0.0/16".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap()
        ]
    );
    assert_eq!(config.bind_addr.port(), 4123);
    assert_eq!(config.service.import_size_limit_bytes, 2 << 30);
    assert_eq!(config.service.currency, "EUR");
    assert!(config.secure_cookies);
}

#[test]
fn the_logged_configuration_holds_no_secret() {
    let secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let config = config_with(&[
        ("SESSION_SECRET", &secret),
        ("DATABASE_URL", "postgres://app:hunter2@db:5432/app"),
    ])
    .unwrap();
    assert_eq!(config.service.session_secret.expose_secret(), &[7u8; 32]);
    let logged = format!("{config:?}");
    assert!(!logged.contains("hunter2"), "{logged}");
    assert!(!logged.contains("[7, 7"), "{logged}");
    assert!(
        logged.contains("postgres://app:***@db:5432/app"),
        "{logged}"
    );
    assert!(logged.contains("import_concurrency: 2"), "{logged}");
}

#[test]
fn key_providers_are_configured_or_refused_with_the_reason() {
    // Local by default: the master key file is made once, private, and reused.
    let config = config_with(&[]).unwrap();
    let file = config.data_dir.join("master-key");
    let KeyProviderSettings::Local(first) = &config.service.keys else {
        panic!("local by default")
    };
    assert_eq!(first.current(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let dir = config.data_dir.display().to_string();
    let again = config_with(&[("DATA_DIR", &dir)]).unwrap();
    let KeyProviderSettings::Local(second) = &again.service.keys else {
        panic!("local")
    };
    assert_eq!(first.to_text(), second.to_text());
    // The logged configuration names versions, never a key.
    let logged = format!("{again:?}");
    let encoded = first.to_text();
    let key = encoded.trim().split_once(':').unwrap().1;
    assert!(!logged.contains(key), "{logged}");

    // MASTER_KEY instead, several versions; a bad one names the variable, not the value.
    let two = MasterKeys::generate()
        .with_new_version()
        .to_text()
        .replace('\n', ",");
    let config = config_with(&[("MASTER_KEY", &two)]).unwrap();
    let KeyProviderSettings::Local(keys) = &config.service.keys else {
        panic!("local")
    };
    assert_eq!(keys.current(), 2);
    let refused = config_with(&[("MASTER_KEY", "1:short")])
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("MASTER_KEY") && refused.contains("(hidden)"),
        "{refused}"
    );

    // AWS KMS, with its endpoint and region.
    let config = config_with(&[
        ("KEY_PROVIDER", "aws-kms"),
        ("KMS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_REGION", "eu-west-1"),
    ])
    .unwrap();
    let KeyProviderSettings::AwsKms(kms) = &config.service.keys else {
        panic!("aws-kms")
    };
    assert_eq!(kms.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    assert_eq!(kms.region, "eu-west-1");
    for (vars, says) in [
        (vec![("KEY_PROVIDER", "vault")], "local or aws-kms"),
        (
            vec![
                ("KEY_PROVIDER", "aws-kms"),
                ("KMS_ENDPOINT_URL", "kms.local"),
            ],
            "KMS_ENDPOINT_URL",
        ),
    ] {
        let refused = config_with(&vars).unwrap_err().to_string();
        assert!(refused.contains(says), "{refused}");
    }
}
