//! Image List speed with 100,000 images in one account, on SQLite and PostgreSQL.
//!
//! Fills the account (and a smaller neighbouring one, which shares 50 of its images with it)
//! through the store layer, then times `Store::list_images` (one page of 20 plus the total
//! count) for the default view, name searches, each filter and two sorts, and prints p50 and
//! p99 per case and database; then the image API's list (`GET /v2/images` without the JSON)
//! for its own cases. Run it with `bench/list`.

use std::time::Instant;

use image_console::domain::api_list::{ApiField, ApiFilter, ApiListQuery, ApiSort, ApiSortKey};
use image_console::domain::attributes::{Architecture, BootMode, Features};
use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::Visibility;
use image_console::domain::list_query::{ListQuery, Ownership, SortColumn, SortDirection};
use image_console::domain::os_catalogue::{OperatingSystem, OsPlatform};
use image_console::domain::share::ShareDecision;
use image_console::store::accounts::UserRow;
use image_console::store::images::NewImageRow;
use image_console::store::shares::ShareOutcome;
use image_console::store::{ApiListOutcome, Store};

mod common;

use common::measure::percentile;

/// Images in the measured account: 100,000, or `BENCH_IMAGES` (`bench/list 1000000`).
fn images() -> usize {
    std::env::var("BENCH_IMAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}
const WARMUP: usize = 20;
const RUNS: usize = 300;
const PREFIXES: [&str; 10] = [
    "web",
    "db",
    "cache",
    "batch",
    "gpu",
    "ci-runner",
    "bastion",
    "erp",
    "kafka",
    "edge",
];

/// A small deterministic generator, so every run measures the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Another account's images share every table and index, as they would in a real console.
const NEIGHBOUR_IMAGES: usize = 20_000;

/// Images the neighbouring account shares with the measured one, which approved them: they
/// are merged into every page of its list.
const SHARED_IMAGES: usize = 50;

async fn fill(store: &Store) -> String {
    let neighbour = fill_account(store, "neighbour-account", NEIGHBOUR_IMAGES, 7).await;
    fill_account(store, "bench-account", images(), 42).await;
    for id in neighbour.iter().take(SHARED_IMAGES) {
        let shared = store
            .share_image("neighbour-account", id, "bench-account", "bench", 256, 1)
            .await
            .unwrap();
        assert!(matches!(shared, ShareOutcome::Shared { .. }), "{shared:?}");
        store
            .decide_share("bench-account", id, ShareDecision::Approve, "bench", 2)
            .await
            .unwrap();
    }
    store.analyze().await.unwrap();
    "bench-account".to_owned()
}

/// Fills an account; returns the ids of its Active images.
async fn fill_account(store: &Store, account: &str, images: usize, seed: u64) -> Vec<String> {
    store
        .create_account_with_user(
            account,
            &UserRow {
                id: uuid::Uuid::new_v4().to_string(),
                account_id: account.into(),
                user_name: account.into(),
                password_hash: "unused".into(),
            },
            0,
        )
        .await
        .unwrap();
    let mut rng = Lcg(seed);
    let mut rows = Vec::with_capacity(images);
    let mut tags = Vec::new();
    for i in 0..images {
        let roll = rng.next() % 100;
        let status = match roll {
            0..=89 => ImageStatus::Active,
            90..=94 => ImageStatus::Failed,
            95..=97 => ImageStatus::Importing,
            _ => ImageStatus::Queued,
        };
        let id = uuid::Uuid::new_v4().to_string();
        if rng.next().is_multiple_of(5) {
            tags.push((
                id.clone(),
                "env".to_owned(),
                if rng.next().is_multiple_of(2) {
                    "prod"
                } else {
                    "dev"
                }
                .to_owned(),
            ));
        }
        rows.push((
            NewImageRow {
                attributes: image_console::domain::image_spec::ImageAttributes {
                    name: format!("{}-{i:06}", PREFIXES[i % PREFIXES.len()]),
                    description: String::new(),
                    // The six Linux platforms, as before Windows was offered.
                    os: Some(OperatingSystem {
                        platform: OsPlatform::ALL[(rng.next() % 6) as usize],
                        version: None,
                    }),
                    min_disk_gb: 10,
                    min_ram_gb: 2,
                    protected: false,
                    architecture: Architecture::X86_64,
                    boot_mode: BootMode::Bios,
                    features: Features::default(),
                },
                id,
                account_id: account.into(),
                convert_to: None,
                signature: Default::default(),
                source_image_id: None,
                visibility: if rng.next().is_multiple_of(5) {
                    Visibility::Shared
                } else {
                    Visibility::Private
                },
                image_type: "Image-Based",
                source_url: Some("https://example.com/image.qcow2".into()),
                expected_checksum: None,
                declared_format: image_console::domain::image::DiskFormat::Qcow2,
                encryption_key: None,
                note: None,
                local_file: None,
                created_by: "bench".into(),
                created_at_ms: 1_700_000_000_000 + i as i64 * 1000,
            },
            status,
            (status == ImageStatus::Active).then(|| (rng.next() % 20_000_000_000) + 200_000),
        ));
    }
    store.insert_images_bulk(&rows).await.unwrap();
    store.insert_tags_bulk(account, &tags).await.unwrap();
    // Every image names its disk bus, as images for KVM often do; one in a thousand asks
    // for IDE.
    let properties: Vec<(String, String, String)> = rows
        .iter()
        .enumerate()
        .map(|(i, (row, ..))| {
            let bus = if i % 1000 == 7 { "ide" } else { "virtio" };
            (row.id.clone(), "hw_disk_bus".to_owned(), bus.to_owned())
        })
        .collect();
    for chunk in properties.chunks(50_000) {
        store.insert_properties_bulk(account, chunk).await.unwrap();
    }
    rows.into_iter()
        .filter(|(_, status, _)| *status == ImageStatus::Active)
        .map(|(row, _, _)| row.id)
        .collect()
}

/// Times every case in turns (one call of each per round), so that a slow patch of the
/// machine falls on all cases alike instead of on whichever ran during it.
async fn measure(store: &Store, account: &str, cases: &[(&str, ListQuery)]) {
    let mut times = vec![Vec::with_capacity(RUNS); cases.len()];
    let mut totals = vec![String::new(); cases.len()];
    for round in 0..WARMUP + RUNS {
        for (i, (_, query)) in cases.iter().enumerate() {
            let start = Instant::now();
            let (images, total) = store.list_images(account, query, 0).await.unwrap();
            let elapsed = start.elapsed();
            assert!(!images.is_empty() || total.count == 0);
            totals[i] = match total.more {
                true => format!(">{}", total.count),
                false => total.count.to_string(),
            };
            if round >= WARMUP {
                times[i].push(elapsed);
            }
        }
    }
    for (i, (label, _)) in cases.iter().enumerate() {
        let times = &mut times[i];
        times.sort();
        println!(
            "  {label:<38} {:>8} matches   p50 {:>7.2} ms   p99 {:>7.2} ms",
            totals[i],
            percentile(times, 0.50).as_secs_f64() * 1000.0,
            percentile(times, 0.99).as_secs_f64() * 1000.0
        );
    }
}

/// Times the image API's list (`Store::list_api_images`, one page of 25) in turns, as
/// `measure` does.
async fn measure_api(store: &Store, account: &str, cases: &[(&str, ApiListQuery)]) {
    let mut times = vec![Vec::with_capacity(RUNS); cases.len()];
    let mut sizes = vec![0; cases.len()];
    for round in 0..WARMUP + RUNS {
        for (i, (_, query)) in cases.iter().enumerate() {
            let start = Instant::now();
            let outcome = store.list_api_images(account, query, 0).await.unwrap();
            let elapsed = start.elapsed();
            let ApiListOutcome::Page(page) = outcome else {
                panic!("unknown marker")
            };
            sizes[i] = page.images.len();
            if round >= WARMUP {
                times[i].push(elapsed);
            }
        }
    }
    for (i, (label, _)) in cases.iter().enumerate() {
        let times = &mut times[i];
        times.sort();
        println!(
            "  API: {label:<33} {:>8} on page  p50 {:>7.2} ms   p99 {:>7.2} ms",
            sizes[i],
            percentile(times, 0.50).as_secs_f64() * 1000.0,
            percentile(times, 0.99).as_secs_f64() * 1000.0
        );
    }
}

/// The image API's cases: the first page, a filter, a rare filter, a sort by name, a
/// property filter, and a page deep in the list (after half of it).
async fn api_cases(store: &Store, account: &str) -> Vec<(&'static str, ApiListQuery)> {
    let base = ApiListQuery::default();
    let field = |field, value: &str| ApiFilter::Field(field, vec![value.to_owned()]);
    let mut middle = ApiListQuery {
        limit: 1000,
        ..base.clone()
    };
    for _ in 0..images() / 2000 {
        let ApiListOutcome::Page(page) = store.list_api_images(account, &middle, 0).await.unwrap()
        else {
            unreachable!()
        };
        middle.marker = page.images.last().map(|(row, _)| row.id.clone());
    }
    vec![
        ("first page, newest first", base.clone()),
        (
            "os_distro=ubuntu",
            ApiListQuery {
                filters: vec![field(ApiField::OsDistro, "ubuntu")],
                ..base.clone()
            },
        ),
        (
            "status=killed (5%)",
            ApiListQuery {
                filters: vec![field(ApiField::Status, "killed")],
                ..base.clone()
            },
        ),
        (
            "sort=name:asc",
            ApiListQuery {
                sort: vec![
                    ApiSort {
                        key: ApiSortKey::Name,
                        descending: false,
                    },
                    ApiSort {
                        key: ApiSortKey::CreatedAt,
                        descending: true,
                    },
                    ApiSort {
                        key: ApiSortKey::Id,
                        descending: true,
                    },
                ],
                ..base.clone()
            },
        ),
        (
            "hw_disk_bus=virtio (every image)",
            ApiListQuery {
                filters: vec![ApiFilter::Property(
                    "hw_disk_bus".into(),
                    vec!["virtio".into()],
                )],
                ..base.clone()
            },
        ),
        (
            "hw_disk_bus=ide (0.1%)",
            ApiListQuery {
                filters: vec![ApiFilter::Property(
                    "hw_disk_bus".into(),
                    vec!["ide".into()],
                )],
                ..base.clone()
            },
        ),
        (
            "marker half way down",
            ApiListQuery {
                marker: middle.marker.clone(),
                ..base.clone()
            },
        ),
    ]
}

async fn run(name: &str, url: &str, reuse: bool) {
    let store = Store::connect(url).await.unwrap();
    let started = Instant::now();
    let account = if reuse {
        println!("{name}: the database a previous run filled");
        "bench-account".to_owned()
    } else {
        let account = fill(&store).await;
        println!(
            "{name}: {} images (and {NEIGHBOUR_IMAGES} of another account) loaded in {:.1} s",
            images(),
            started.elapsed().as_secs_f64()
        );
        account
    };
    let base = ListQuery::default();
    let cases: Vec<(&str, ListQuery)> = vec![
        ("first page, newest first", base.clone()),
        (
            "search \"-04242\" (rare)",
            ListQuery {
                search: "-04242".into(),
                ..base.clone()
            },
        ),
        (
            "search \"WEB-0\" (10%; 1% at 1M)",
            ListQuery {
                search: "WEB-0".into(),
                ..base.clone()
            },
        ),
        (
            "search \"ci-run\" (10%)",
            ListQuery {
                search: "ci-run".into(),
                ..base.clone()
            },
        ),
        (
            "search \"db\" (2 letters, 10%)",
            ListQuery {
                search: "db".into(),
                ..base.clone()
            },
        ),
        (
            "search \"b\" (1 letter, 40%)",
            ListQuery {
                search: "b".into(),
                ..base.clone()
            },
        ),
        (
            "search \"-0\" (all at 100k, 10% at 1M)",
            ListQuery {
                search: "-0".into(),
                ..base.clone()
            },
        ),
        (
            "search \"-0\", every match counted",
            ListQuery {
                search: "-0".into(),
                count_all: true,
                ..base.clone()
            },
        ),
        (
            "search \"zz\" (no match)",
            ListQuery {
                search: "zz".into(),
                ..base.clone()
            },
        ),
        (
            "filter status Active (90%)",
            ListQuery {
                status: Some(ImageStatus::Active),
                ..base.clone()
            },
        ),
        (
            "filter status Failed (5%)",
            ListQuery {
                status: Some(ImageStatus::Failed),
                ..base.clone()
            },
        ),
        (
            "filter OS type Rocky Linux",
            ListQuery {
                os_platform: Some(OsPlatform::Rocky),
                ..base.clone()
            },
        ),
        (
            "filter visibility Shared",
            ListQuery {
                visibility: Some(Visibility::Shared),
                ..base.clone()
            },
        ),
        (
            "filter tag key env",
            ListQuery {
                tag_key: "env".into(),
                ..base.clone()
            },
        ),
        (
            "filter tag env=prod",
            ListQuery {
                tag_key: "env".into(),
                tag_value: "prod".into(),
                ..base.clone()
            },
        ),
        (
            "status Active + OS Ubuntu",
            ListQuery {
                status: Some(ImageStatus::Active),
                os_platform: Some(OsPlatform::Ubuntu),
                ..base.clone()
            },
        ),
        (
            "search \"web\" + status Active",
            ListQuery {
                search: "web".into(),
                status: Some(ImageStatus::Active),
                ..base.clone()
            },
        ),
        (
            "status Failed + OS Oracle (rare pair)",
            ListQuery {
                status: Some(ImageStatus::Failed),
                os_platform: Some(OsPlatform::Oracle),
                ..base.clone()
            },
        ),
        (
            "tag env=prod + status Active",
            ListQuery {
                tag_key: "env".into(),
                tag_value: "prod".into(),
                status: Some(ImageStatus::Active),
                ..base.clone()
            },
        ),
        (
            "search \"web\" + tag key env",
            ListQuery {
                search: "web".into(),
                tag_key: "env".into(),
                ..base.clone()
            },
        ),
        (
            "search \"web\", sorted by name",
            ListQuery {
                search: "web".into(),
                sort: SortColumn::Name,
                direction: SortDirection::Asc,
                ..base.clone()
            },
        ),
        (
            "sort by name",
            ListQuery {
                sort: SortColumn::Name,
                direction: SortDirection::Asc,
                ..base.clone()
            },
        ),
        (
            "sort by size, largest first",
            ListQuery {
                sort: SortColumn::Size,
                direction: SortDirection::Desc,
                ..base.clone()
            },
        ),
        (
            "page 100 of 5,000",
            ListQuery {
                page: 100,
                ..base.clone()
            },
        ),
        // Every case above merges the 50 shared images into the page; these leave them out
        // (Owner: this account) or show only them, to show what the merge costs.
        (
            "own only: first page",
            ListQuery {
                owner: Ownership::Mine,
                ..base.clone()
            },
        ),
        (
            "own only: sort by name",
            ListQuery {
                owner: Ownership::Mine,
                sort: SortColumn::Name,
                direction: SortDirection::Asc,
                ..base.clone()
            },
        ),
        (
            "own only: search \"WEB-0\"",
            ListQuery {
                owner: Ownership::Mine,
                search: "WEB-0".into(),
                ..base.clone()
            },
        ),
        (
            "own only: page 100",
            ListQuery {
                owner: Ownership::Mine,
                page: 100,
                ..base.clone()
            },
        ),
        (
            "shared with it only",
            ListQuery {
                owner: Ownership::SharedWithMe,
                ..base.clone()
            },
        ),
    ];
    measure(&store, &account, &cases).await;
    let api = api_cases(&store, &account).await;
    measure_api(&store, &account, &api).await;
    store.close().await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // BENCH_SQLITE_PATH keeps the SQLite database for a look at its query plans afterwards;
    // with BENCH_REUSE=1, a kept database is measured again without filling it anew.
    let sqlite_path = std::env::var("BENCH_SQLITE_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.db"));
    let reuse = std::env::var("BENCH_REUSE").as_deref() == Ok("1") && sqlite_path.exists();
    if !reuse {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", sqlite_path.display()));
        }
    }
    let sqlite = format!("sqlite://{}", sqlite_path.display());
    // BENCH_ONLY=postgres (or sqlite) measures one database.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "postgres" {
        run("SQLite", &sqlite, reuse).await;
    }
    if only == "sqlite" {
        return;
    }
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => run("PostgreSQL", &url, false).await,
        Err(_) => println!("PostgreSQL: skipped (set BENCH_DATABASE_URL, as bench/list does)"),
    }
}
