//! The OS catalogue in the database: an upgrade keeps each image's OS type as a Linux
//! platform, the Image List filters by operating system and by platform (on every query
//! path), the CSV export has a column for each field, and the service refuses what the
//! catalogue does not offer.

use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::Visibility;
use image_console::domain::list_query::ListQuery;
use image_console::domain::os_catalogue::{OsFamily, OsFamilyFilter, OsPlatform, stored_os_type};
use image_console::service::image_api::ApiChange;
use image_console::service::{Actor, ServiceError};
use sqlx::Executor;

use crate::support::{Backend, Seed, TestApp, TestDb, create_form, seed_image, test_settings};

/// The first migration of the catalogue: the database an earlier release left stops before it.
const CATALOGUE_MIGRATION: i64 = 20261208000001;

/// The six OS types an earlier release offered, each on one image of account `legacy`.
const EARLIER_OS_TYPES: [&str; 6] = ["alma", "centos", "oracle", "rhel", "rocky", "ubuntu"];

/// A database migrated as far as the release before the catalogue, holding an account with
/// one image of each earlier OS type.
async fn database_before_the_catalogue(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    sqlx::any::install_default_drivers();
    let (folder, url) = match backend.database() {
        image_console::store::Backend::Sqlite => {
            ("migrations/sqlite", format!("{}?mode=rwc", db.url()))
        }
        image_console::store::Backend::Postgres => ("migrations/postgres", db.url().to_owned()),
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut migrator = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    let earlier: Vec<_> = migrator
        .iter()
        .filter(|m| m.version < CATALOGUE_MIGRATION)
        .cloned()
        .collect();
    assert!(
        earlier.len() < migrator.iter().count(),
        "the catalogue migration exists"
    );
    migrator.migrations = earlier.into();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    pool.execute(
        "INSERT INTO accounts (id, created_at) VALUES ('legacy', 1700000000000); \
         INSERT INTO users (id, account_id, user_name, password_hash, created_at) \
         VALUES ('legacy-admin', 'legacy', 'admin@legacy', 'not a hash', 1700000000000);",
    )
    .await
    .unwrap();
    for (n, os_type) in EARLIER_OS_TYPES.iter().enumerate() {
        sqlx::query(
            "INSERT INTO images (id, account_id, name, description, os_type, min_disk_gb, \
             min_ram_gb, visibility, protected, status, image_type, created_by, created_at, \
             updated_by, updated_at) \
             VALUES ($1, 'legacy', $2, '', $3, 10, 2, 'private', 0, 'failed', 'Custom', \
             'admin@legacy', $4, 'admin@legacy', $4)",
        )
        .bind(format!("00000000-0000-4000-8000-00000000000{n}"))
        .bind(format!("{os_type}-base"))
        .bind(*os_type)
        .bind(1_700_000_000_000_i64 + i64::try_from(n).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    db
}

fn legacy_actor() -> Actor {
    Actor {
        user_id: "legacy-admin".into(),
        user_name: "admin@legacy".into(),
        account_id: "legacy".into(),
    }
}

async fn total(app: &TestApp, actor: &Actor, query: ListQuery) -> u64 {
    app.services.list_images(actor, &query).await.unwrap().total
}

fn family(family: OsFamily) -> ListQuery {
    ListQuery {
        os_family: Some(OsFamilyFilter::Family(family)),
        ..ListQuery::default()
    }
}

fn not_specified() -> ListQuery {
    ListQuery {
        os_family: Some(OsFamilyFilter::NotSpecified),
        ..ListQuery::default()
    }
}

/// An image made through the image API with no operating system, as Glance clients make
/// them.
async fn api_image_without_os(
    app: &TestApp,
    actor: &Actor,
    name: &str,
    visibility: &str,
) -> String {
    let changes = [
        ApiChange::Name(name.into()),
        ApiChange::Visibility(visibility.into()),
        ApiChange::Tags(vec![image_console::domain::tags::TagPair {
            key: "env".into(),
            value: "prod".into(),
        }]),
    ];
    let image = app
        .services
        .api_create_image(actor, None, "raw", &changes)
        .await
        .unwrap();
    assert_eq!(image.detail.attributes.os, None);
    image.detail.id
}

async fn an_upgrade_keeps_each_os_type_as_a_linux_platform(backend: Backend) {
    let db = database_before_the_catalogue(backend).await;
    let app = TestApp::spawn_on(backend, db, test_settings()).await;
    let legacy = legacy_actor();
    for (n, os_type) in EARLIER_OS_TYPES.iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-00000000000{n}");
        let image = app.services.get_image(&legacy, &id).await.unwrap();
        let os = image.attributes.os.as_ref().unwrap();
        assert_eq!(os.family(), OsFamily::Linux, "{os_type}");
        assert_eq!(os.platform.as_str(), *os_type);
        assert_eq!(os.version, None, "{os_type} has no version");
    }
    // The filters, the search index and the counters all see them as Linux.
    assert_eq!(total(&app, &legacy, family(OsFamily::Linux)).await, 6);
    assert_eq!(total(&app, &legacy, family(OsFamily::Windows)).await, 0);
    let searched = ListQuery {
        search: "base".into(),
        status: Some(ImageStatus::Failed),
        ..family(OsFamily::Linux)
    };
    assert_eq!(total(&app, &legacy, searched.clone()).await, 6);

    // Edited to Windows Server, an upgraded image moves to the other family everywhere.
    let centos = "00000000-0000-4000-8000-000000000001";
    let image = app.services.get_image(&legacy, centos).await.unwrap();
    let mut form = image_console::domain::image_spec::EditImageForm {
        attributes: image_console::domain::image_spec::AttributesForm::of(&image.attributes),
        visibility: String::new(),
    };
    form.attributes.os_family = "windows".into();
    form.attributes.os_platform = "windows-server".into();
    form.attributes.os_version = "2019".into();
    app.services
        .update_image(&legacy, centos, &form, image.updated_at_ms)
        .await
        .unwrap();
    assert_eq!(total(&app, &legacy, family(OsFamily::Linux)).await, 5);
    assert_eq!(total(&app, &legacy, searched).await, 5);
    let windows_search = ListQuery {
        search: "centos".into(),
        ..family(OsFamily::Windows)
    };
    let found = app
        .services
        .list_images(&legacy, &windows_search)
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(
        found.images[0].os.as_ref().unwrap().label(),
        "Windows Server 2019"
    );
}

/// Images of every platform, counted by family and by platform on each path the list takes:
/// the counters alone, the counters' cube with a second filter, and the search index.
async fn the_list_filters_by_operating_system_and_platform(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let platforms = [
        (OsPlatform::Ubuntu, Some("24.04")),
        (OsPlatform::Ubuntu, None),
        (OsPlatform::CentOS, Some("7.9")),
        (OsPlatform::Rocky, Some("9")),
        (OsPlatform::WindowsServer, Some("2019")),
        (OsPlatform::WindowsServer, Some("2022")),
        (OsPlatform::Windows, Some("11")),
    ];
    for (n, (platform, version)) in platforms.into_iter().enumerate() {
        seed_image(
            &app.services,
            &alice,
            Seed {
                name: &format!("web-{n}"),
                os_platform: platform,
                os_version: version,
                visibility: if n % 2 == 0 {
                    Visibility::Private
                } else {
                    Visibility::Shared
                },
                tags: &[("env", "prod")],
                ..Seed::default()
            },
        )
        .await;
    }
    // Two made through the image API without an operating system.
    api_image_without_os(&app, &alice, "web-api-0", "private").await;
    api_image_without_os(&app, &alice, "web-api-1", "shared").await;
    let (linux, windows) = (
        Some(OsFamilyFilter::Family(OsFamily::Linux)),
        Some(OsFamilyFilter::Family(OsFamily::Windows)),
    );
    let none = Some(OsFamilyFilter::NotSpecified);
    let with = |family: Option<OsFamilyFilter>, platform: Option<OsPlatform>| ListQuery {
        os_family: family,
        os_platform: platform,
        ..ListQuery::default()
    };
    let cases = [
        (with(linux, None), 4),
        (with(windows, None), 3),
        (with(None, Some(OsPlatform::WindowsServer)), 2),
        (with(windows, Some(OsPlatform::Windows)), 1),
        (with(None, Some(OsPlatform::Ubuntu)), 2),
        (with(None, Some(OsPlatform::Alma)), 0),
        (with(none, None), 2),
        (with(None, None), 9),
        // Filters that cannot both hold match nothing.
        (with(linux, Some(OsPlatform::Windows)), 0),
        (with(none, Some(OsPlatform::Ubuntu)), 0),
    ];
    for (query, expected) in cases {
        let variants = [
            query.clone(),
            ListQuery {
                visibility: Some(Visibility::Private),
                ..query.clone()
            },
            ListQuery {
                tag_key: "env".into(),
                tag_value: "prod".into(),
                ..query.clone()
            },
            ListQuery {
                search: "web".into(),
                ..query.clone()
            },
        ];
        for variant in variants {
            let page = app.services.list_images(&alice, &variant).await.unwrap();
            // Each view's total is its rows, and each row fits the filters.
            assert_eq!(page.total, page.images.len() as u64, "{variant:?}");
            for image in &page.images {
                let os_type = stored_os_type(image.os.as_ref());
                assert!(query.os_types().is_none_or(|o| o.contains(&os_type)));
            }
            if variant.visibility.is_none() {
                assert_eq!(page.total, expected, "{variant:?}");
            }
        }
    }
    // Sorting by OS type orders by platform.
    let sorted = app
        .services
        .list_images(
            &alice,
            &ListQuery {
                sort: image_console::domain::list_query::SortColumn::OsType,
                direction: image_console::domain::list_query::SortDirection::Asc,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let order: Vec<&str> = sorted
        .images
        .iter()
        .map(|i| stored_os_type(i.os.as_ref()))
        .collect();
    let mut expected = order.clone();
    expected.sort_unstable();
    assert_eq!(order, expected);
}

async fn the_csv_export_has_a_column_for_each_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    for (name, platform, version) in [
        ("win", OsPlatform::WindowsServer, Some("2019")),
        ("lin", OsPlatform::Ubuntu, None),
    ] {
        seed_image(
            &app.services,
            &alice,
            Seed {
                name,
                os_platform: platform,
                os_version: version,
                ..Seed::default()
            },
        )
        .await;
    }
    api_image_without_os(&app, &alice, "api", "private").await;
    let (header, rows) = export(&app, &alice, ListQuery::default()).await;
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (family_column, platform, version) = (
        column("Operating system"),
        column("System platform"),
        column("System version"),
    );
    assert_eq!((platform, version), (family_column + 1, family_column + 2));
    assert!(!header.iter().any(|h| h == "OS type"));
    let cells = |row: &Vec<String>| {
        (
            row[0].clone(),
            row[family_column].clone(),
            row[platform].clone(),
            row[version].clone(),
        )
    };
    let mut seen: Vec<_> = rows.iter().map(cells).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "api".into(),
                "Not specified".into(),
                "Not specified".into(),
                "Not specified".into()
            ),
            (
                "lin".into(),
                "Linux".into(),
                "Ubuntu".into(),
                "Not specified".into()
            ),
            (
                "win".into(),
                "Windows".into(),
                "Windows Server".into(),
                "2019".into()
            ),
        ]
    );
    // The export follows the operating system filter.
    let (_, windows) = export(&app, &alice, family(OsFamily::Windows)).await;
    assert_eq!(
        windows.iter().map(cells).map(|c| c.0).collect::<Vec<_>>(),
        ["win"]
    );
    let (_, unspecified) = export(&app, &alice, not_specified()).await;
    assert_eq!(
        unspecified
            .iter()
            .map(cells)
            .map(|c| c.0)
            .collect::<Vec<_>>(),
        ["api"]
    );
}

/// The CSV export of `query`: its header and rows.
async fn export(app: &TestApp, actor: &Actor, query: ListQuery) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = app.services.export_images_csv(actor, &query).await.unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// The service refuses what the catalogue does not offer, naming the field, and keeps
/// nothing of the request.
async fn the_service_refuses_what_the_catalogue_does_not_offer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let cases = [
        ("linux", "centos", "7.2", "aarch64", "os_version"),
        ("linux", "windows-server", "2019", "x86_64", "os_platform"),
        ("windows", "windows", "11", "aarch64", "os_platform"),
        ("", "ubuntu", "", "x86_64", "os_family"),
    ];
    for (family, platform, version, arch, field) in cases {
        let mut form = create_form("refused", "https://example.com/disk.qcow2");
        form.attributes.os_family = family.into();
        form.attributes.os_platform = platform.into();
        form.attributes.os_version = version.into();
        form.attributes.architecture = arch.into();
        match app.services.create_image(&alice, &form).await {
            Err(ServiceError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, [field], "{platform} {version} {arch}: {errors:?}");
            }
            other => panic!("{platform} {version} on {arch} was not refused: {other:?}"),
        }
    }
    assert_eq!(total(&app, &alice, ListQuery::default()).await, 0);
}

/// An image the image API made without an operating system can be edited as it is, then
/// given one; once given, it cannot be taken away. Create Image always asks for one.
async fn an_unspecified_operating_system_is_set_with_edit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let id = api_image_without_os(&app, &alice, "from-packer", "private").await;
    let edit = |image: &image_console::domain::image::ImageDetail| {
        image_console::domain::image_spec::EditImageForm {
            attributes: image_console::domain::image_spec::AttributesForm::of(&image.attributes),
            visibility: String::new(),
        }
    };
    // Renamed, its operating system still Not specified.
    let image = app.services.get_image(&alice, &id).await.unwrap();
    let mut form = edit(&image);
    assert_eq!(
        (
            form.attributes.os_family.as_str(),
            form.attributes.os_platform.as_str()
        ),
        ("", "")
    );
    form.attributes.name = "from-packer-renamed".into();
    app.services
        .update_image(&alice, &id, &form, image.updated_at_ms)
        .await
        .unwrap();
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.attributes.name, "from-packer-renamed");
    assert_eq!(image.attributes.os, None);
    assert_eq!(total(&app, &alice, not_specified()).await, 1);
    // Half an operating system is refused.
    let mut half = edit(&image);
    half.attributes.os_family = "linux".into();
    match app
        .services
        .update_image(&alice, &id, &half, image.updated_at_ms)
        .await
    {
        Err(ServiceError::Invalid(errors)) => assert_eq!(errors[0].field, "os_platform"),
        other => panic!("half an operating system was accepted: {other:?}"),
    }
    // Set: the filters and Work History follow.
    let mut set = edit(&image);
    set.attributes.os_family = "linux".into();
    set.attributes.os_platform = "ubuntu".into();
    set.attributes.os_version = "24.04".into();
    app.services
        .update_image(&alice, &id, &set, image.updated_at_ms)
        .await
        .unwrap();
    assert_eq!(total(&app, &alice, not_specified()).await, 0);
    assert_eq!(total(&app, &alice, family(OsFamily::Linux)).await, 1);
    let searched = ListQuery {
        search: "packer".into(),
        ..family(OsFamily::Linux)
    };
    assert_eq!(total(&app, &alice, searched).await, 1);
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let change = history.entries[0]
        .changes
        .iter()
        .find(|c| c.field == "Operating system")
        .expect("the operating system's change is recorded");
    assert_eq!(
        (change.old.as_str(), change.new.as_str()),
        ("Not specified", "Linux")
    );
    // Once set, clearing it is refused.
    let image = app.services.get_image(&alice, &id).await.unwrap();
    let mut cleared = edit(&image);
    cleared.attributes.os_family.clear();
    cleared.attributes.os_platform.clear();
    cleared.attributes.os_version.clear();
    match app
        .services
        .update_image(&alice, &id, &cleared, image.updated_at_ms)
        .await
    {
        Err(ServiceError::Invalid(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["os_family", "os_platform"]);
        }
        other => panic!("clearing the operating system was accepted: {other:?}"),
    }
    // Create Image asks for one.
    let mut form = create_form("no-os", "https://example.com/disk.qcow2");
    form.attributes.os_family.clear();
    form.attributes.os_platform.clear();
    match app.services.create_image(&alice, &form).await {
        Err(ServiceError::Invalid(errors)) => assert_eq!(
            errors[0].message,
            "Select an operating system: Linux or Windows."
        ),
        other => panic!("Create Image without an operating system was accepted: {other:?}"),
    }
}

crate::on_both_databases!(
    an_unspecified_operating_system_is_set_with_edit,
    an_upgrade_keeps_each_os_type_as_a_linux_platform,
    the_list_filters_by_operating_system_and_platform,
    the_csv_export_has_a_column_for_each_field,
    the_service_refuses_what_the_catalogue_does_not_offer,
);
