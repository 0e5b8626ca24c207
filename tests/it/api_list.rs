//! `GET /v2/images` against a reference: the list as it was computed before it ran in SQL
//! (every image's JSON loaded, then filtered, sorted and paged in memory), kept here. Hundreds
//! of random combinations of filters, sorts, limits and markers over an account with its own
//! images (some in the Recycle Bin), images other accounts share with it in each status, and
//! images it may not see, must give the same pages on both databases.

use std::cmp::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use image_console::domain::attributes::{Architecture, BootMode, Features};
use image_console::domain::image::{DiskFormat, ImageStatus};
use image_console::domain::image_spec::{ImageAttributes, Visibility};
use image_console::domain::os_catalogue::{OperatingSystem, OsPlatform};
use image_console::domain::share::{ShareDecision, ShareStatus};
use image_console::store::images::NewImageRow;
use serde_json::Value;

use crate::support::{Backend, Client, TestApp};

/// A small deterministic generator, so a failure names a case that can be run again.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: [&str; 6] = ["web", "db", "Web", "cache", "web-2", "alpha"];
const BASE_MS: i64 = 1_760_000_000_000;

/// What the seeding made, for the reference.
struct Seeded {
    /// Every image the account sees in the list: (id, member status for shared ones).
    visible: Vec<(String, Option<ShareStatus>)>,
    /// Its own images in the Recycle Bin.
    binned: Vec<String>,
    /// Another account's image it may not see.
    foreign: String,
    acme: image_console::service::Actor,
}

fn image_row(
    rng: &mut Lcg,
    account: &str,
    n: usize,
    status: ImageStatus,
) -> (NewImageRow, ImageStatus, Option<u64>) {
    let id = uuid::Uuid::new_v4().to_string();
    let sized = matches!(status, ImageStatus::Active | ImageStatus::Deactivated);
    let row = NewImageRow {
        attributes: ImageAttributes {
            name: rng.pick(&NAMES).to_string(),
            description: String::new(),
            // Some made through the API without an operating system (Not specified).
            os: (rng.below(5) != 0).then(|| OperatingSystem {
                platform: *rng.pick(&OsPlatform::ALL),
                version: None,
            }),
            min_disk_gb: [0, 10, 20][rng.below(3)],
            min_ram_gb: [0, 1, 2, 4][rng.below(4)],
            protected: rng.below(5) == 0,
            architecture: Architecture::X86_64,
            boot_mode: BootMode::Bios,
            features: Features::default(),
        },
        id,
        account_id: account.into(),
        visibility: if rng.below(3) == 0 {
            Visibility::Shared
        } else {
            Visibility::Private
        },
        image_type: "Image-Based",
        source_url: (rng.below(2) == 0).then(|| "https://images.example.com/x.qcow2".into()),
        expected_checksum: None,
        declared_format: *rng.pick(&[DiskFormat::Qcow2, DiskFormat::Raw, DiskFormat::Iso]),
        encryption_key: None,
        convert_to: None,
        signature: Default::default(),
        source_image_id: None,
        note: None,
        local_file: None,
        created_by: account.into(),
        // Three images in each second and some in the same millisecond: the order then
        // rests on milliseconds, then on the id.
        created_at_ms: BASE_MS + (n as i64 / 3) * 1000 + [0, 0, 400][n % 3],
    };
    // A few sizes repeat, so sorting by size has ties too.
    let size = sized.then(|| [1 << 20, 5 << 20, 1 << 30][rng.below(3)] + rng.below(2) as u64);
    (row, status, size)
}

async fn seed(app: &TestApp, rng: &mut Lcg) -> Seeded {
    let store = app.services.store();
    let acme = app.sign_up("acme").await.actor;
    app.sign_up("other").await;
    let statuses = [
        ImageStatus::Active,
        ImageStatus::Active,
        ImageStatus::Queued,
        ImageStatus::Failed,
        ImageStatus::Importing,
        ImageStatus::Deactivated,
        ImageStatus::Uploading,
        ImageStatus::Deleted,
    ];
    let own: Vec<_> = (0..48)
        .map(|n| {
            let status = *rng.pick(&statuses);
            image_row(rng, "acme", n, status)
        })
        .collect();
    store.insert_images_bulk(&own).await.unwrap();
    let mut tags = Vec::new();
    let mut properties = Vec::new();
    for (row, ..) in &own {
        for (key, value) in [
            ("env", "prod"),
            ("env", "dev"),
            ("web", ""),
            ("team", "a=b"),
        ] {
            if rng.below(3) == 0 && !tags.iter().any(|(id, k, _)| id == &row.id && k == key) {
                tags.push((row.id.clone(), key.to_owned(), value.to_owned()));
            }
        }
        if rng.below(2) == 0 {
            let bus = *rng.pick(&["scsi", "virtio"]);
            properties.push((row.id.clone(), "hw_disk_bus".into(), bus.to_owned()));
        }
        if rng.below(4) == 0 {
            properties.push((row.id.clone(), "custom.note".into(), "x".repeat(300)));
        }
    }
    store.insert_tags_bulk("acme", &tags).await.unwrap();
    store
        .insert_properties_bulk("acme", &properties)
        .await
        .unwrap();

    // Another account's Active images, interleaved in time with acme's: most shared with
    // acme in each status, one not shared at all. Its tags and properties stay its own.
    let theirs: Vec<_> = (0..13)
        .map(|n| image_row(rng, "other", n * 3 + 1, ImageStatus::Active))
        .collect();
    store.insert_images_bulk(&theirs).await.unwrap();
    let their_tags: Vec<_> = theirs
        .iter()
        .map(|(row, ..)| (row.id.clone(), "env".to_owned(), "prod".to_owned()))
        .collect();
    store.insert_tags_bulk("other", &their_tags).await.unwrap();
    let their_properties: Vec<_> = theirs
        .iter()
        .map(|(row, ..)| (row.id.clone(), "hw_disk_bus".into(), "scsi".into()))
        .collect();
    store
        .insert_properties_bulk("other", &their_properties)
        .await
        .unwrap();
    let mut visible: Vec<(String, Option<ShareStatus>)> = own
        .iter()
        .filter(|(_, status, _)| !status.in_recycle_bin())
        .map(|(row, ..)| (row.id.clone(), None))
        .collect();
    let binned = own
        .iter()
        .filter(|(_, status, _)| status.in_recycle_bin())
        .map(|(row, ..)| row.id.clone())
        .collect();
    for (n, (row, ..)) in theirs.iter().enumerate().skip(1) {
        store
            .share_image("other", &row.id, "acme", "other", 256, BASE_MS)
            .await
            .unwrap();
        let status = match n % 3 {
            0 => ShareStatus::Pending,
            1 => ShareStatus::Accepted,
            _ => ShareStatus::Rejected,
        };
        let decision = match status {
            ShareStatus::Accepted => Some(ShareDecision::Approve),
            ShareStatus::Rejected => Some(ShareDecision::Reject),
            _ => None,
        };
        if let Some(decision) = decision {
            store
                .decide_share("acme", &row.id, decision, "acme", BASE_MS)
                .await
                .unwrap();
        }
        visible.push((row.id.clone(), Some(status)));
    }
    Seeded {
        visible,
        binned,
        foreign: theirs[0].0.id.clone(),
        acme,
    }
}

/// An image's JSON as the reference keeps it: the document, its share's status, and its
/// times in milliseconds (the JSON shows whole seconds).
#[derive(Clone)]
struct Doc {
    json: Value,
    member_status: Option<ShareStatus>,
    created_ms: i64,
    updated_ms: i64,
}

async fn get(client: &Client, token: &str, path: &str) -> (StatusCode, Value) {
    let request = Request::get(path)
        .header("x-auth-token", token)
        .body(Body::empty())
        .unwrap();
    let response = client.send(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, json)
}

async fn reference_docs(app: &TestApp, client: &Client, token: &str, seeded: &Seeded) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (id, member_status) in &seeded.visible {
        let (status, json) = get(client, token, &format!("/v2/images/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let owner = json["owner"].as_str().unwrap().to_owned();
        let row = app
            .services
            .store()
            .get_image(&owner, id)
            .await
            .unwrap()
            .unwrap();
        docs.push(Doc {
            json,
            member_status: *member_status,
            created_ms: row.created_at_ms,
            updated_ms: row.updated_at_ms,
        });
    }
    docs
}

// ---- The reference: the list as computed in memory before it ran in SQL. ----

/// The console's system platform for a Glance `os_distro`.
fn os_type_value(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    match lower.as_str() {
        "almalinux" | "alma" => "alma".into(),
        "oracle" | "oraclelinux" | "ol" => "oracle".into(),
        "rhel" | "redhat" => "rhel".into(),
        "rocky" | "rockylinux" => "rocky".into(),
        "windows-server" | "windows_server" | "windowsserver" => "windows-server".into(),
        _ => lower,
    }
}

fn field<'a>(doc: &'a Value, key: &str) -> &'a Value {
    doc.get(key).unwrap_or(&Value::Null)
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn matches_filter(doc: &Value, key: &str, wanted: &str) -> bool {
    let size = field(doc, "size").as_u64();
    let bound = wanted.parse::<u64>().ok();
    match key {
        "size_min" => return size.zip(bound).is_some_and(|(s, m)| s >= m),
        "size_max" => return size.zip(bound).is_some_and(|(s, m)| s <= m),
        "visibility" if wanted == "all" => return true,
        _ => {}
    }
    let as_text = match field(doc, key) {
        Value::String(s) => s.clone(),
        Value::Null => return false,
        other => other.to_string(),
    };
    let wanted_value = |w: &str| {
        if key == "os_distro" {
            os_type_value(w)
        } else {
            w.to_owned()
        }
    };
    match wanted.strip_prefix("in:") {
        Some(list) => list.split(',').any(|w| wanted_value(w) == as_text),
        None => wanted_value(wanted) == as_text,
    }
}

struct Query {
    pairs: Vec<(String, String)>,
    sort: Vec<(String, bool)>,
    limit: usize,
}

fn order(sort: &[(String, bool)], a: &Doc, b: &Doc) -> Ordering {
    sort.iter()
        .map(|(key, descending)| {
            let order = match key.as_str() {
                "created_at" => a.created_ms.cmp(&b.created_ms),
                "updated_at" => a.updated_ms.cmp(&b.updated_ms),
                _ => compare(field(&a.json, key), field(&b.json, key)),
            };
            if *descending { order.reverse() } else { order }
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// The page (ids) and whether more follow; `None` for an unknown marker. A marker the
/// account sees but the filters leave out places the page where it would sort (as Glance
/// does); the reference before SQL refused it.
fn reference_page(docs: &[Doc], query: &Query) -> Option<(Vec<Value>, bool)> {
    fn values<'a>(query: &'a Query, key: &'a str) -> impl Iterator<Item = &'a str> {
        query
            .pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    let get = |key: &'static str| values(query, key);
    let member_status = get("member_status").last().unwrap_or("accepted");
    let tags: Vec<&str> = get("tag").collect();
    let filters: Vec<(&str, &str)> = query
        .pairs
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "limit" | "marker" | "sort" | "sort_key" | "sort_dir" | "tag" | "member_status"
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut listed: Vec<&Doc> = docs
        .iter()
        .filter(|doc| {
            if let Some(status) = doc.member_status
                && member_status != "all"
                && status.as_str() != member_status
            {
                return false;
            }
            let doc_tags: Vec<&str> = field(&doc.json, "tags")
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            tags.iter().all(|t| doc_tags.contains(t))
                && filters
                    .iter()
                    .all(|(key, wanted)| matches_filter(&doc.json, key, wanted))
        })
        .collect();
    listed.sort_by(|a, b| order(&query.sort, a, b));
    let start = match get("marker").last() {
        Some(marker) => {
            let marker = docs.iter().find(|d| d.json["id"] == marker)?;
            listed
                .iter()
                .take_while(|d| order(&query.sort, d, marker) != Ordering::Greater)
                .count()
        }
        None => 0,
    };
    let rest = listed.len().saturating_sub(start);
    let page = listed
        .into_iter()
        .skip(start)
        .take(query.limit)
        .map(|d| d.json.clone())
        .collect();
    Some((page, rest > query.limit))
}

// ---- Random queries. ----

const SORT_KEYS: [&str; 12] = [
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "virtual_size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "visibility",
];

fn random_query(rng: &mut Lcg, docs: &[Doc], seeded: &Seeded) -> Query {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let some_id = |rng: &mut Lcg| rng.pick(docs).json["id"].as_str().unwrap().to_owned();
    for _ in 0..rng.below(3) {
        let (key, value): (&str, String) = match rng.below(20) {
            0 => ("name", rng.pick(&NAMES).to_string()),
            1 => (
                "name",
                format!("in:{},{}", rng.pick(&NAMES), rng.pick(&NAMES)),
            ),
            2 => (
                "status",
                rng.pick(&[
                    "active",
                    "queued",
                    "killed",
                    "saving",
                    "importing",
                    "uploading",
                    "deactivated",
                    "in:active,killed",
                ])
                .to_string(),
            ),
            3 => (
                "visibility",
                rng.pick(&["private", "shared", "all"]).to_string(),
            ),
            4 => (
                "os_distro",
                rng.pick(&[
                    "ubuntu",
                    "Ubuntu",
                    "RockyLinux",
                    "windows",
                    "in:alma,rhel",
                    "",
                    "in:ubuntu,",
                ])
                .to_string(),
            ),
            5 => (
                "os_type",
                rng.pick(&["linux", "windows", "Linux"]).to_string(),
            ),
            6 => (
                "disk_format",
                rng.pick(&["qcow2", "raw", "iso", "in:raw,iso"]).to_string(),
            ),
            7 => ("min_disk", rng.pick(&["0", "10", "20", "010"]).to_string()),
            8 => (
                "min_ram",
                rng.pick(&["0", "1024", "2048", "1000"]).to_string(),
            ),
            9 => ("owner", rng.pick(&["acme", "other"]).to_string()),
            10 => ("protected", rng.pick(&["true", "false"]).to_string()),
            11 => (
                "size_min",
                rng.pick(&["1048576", "5242881", "0"]).to_string(),
            ),
            12 => ("size_max", rng.pick(&["5242880", "1073741824"]).to_string()),
            13 | 14 => (
                "tag",
                rng.pick(&["env=prod", "env=dev", "web", "team=a=b", "none"])
                    .to_string(),
            ),
            15 => (
                "hw_disk_bus",
                rng.pick(&["scsi", "virtio", "in:scsi,ide"]).to_string(),
            ),
            16 => (
                "member_status",
                rng.pick(&["pending", "accepted", "rejected", "all"])
                    .to_string(),
            ),
            17 => ("id", some_id(rng)),
            18 => ("container_format", rng.pick(&["bare", "ovf"]).to_string()),
            _ => ("architecture", rng.pick(&["x86_64", "aarch64"]).to_string()),
        };
        pairs.push((key.to_owned(), value));
    }
    let mut sort: Vec<(String, bool)> = Vec::new();
    let keys = rng.below(3);
    if keys > 0 {
        let chosen: Vec<(&str, bool)> = (0..keys)
            .map(|_| (*rng.pick(&SORT_KEYS), rng.below(2) == 0))
            .collect();
        if rng.below(2) == 0 {
            let text: Vec<String> = chosen
                .iter()
                .map(|(k, d)| format!("{k}:{}", if *d { "desc" } else { "asc" }))
                .collect();
            pairs.push(("sort".into(), text.join(",")));
        } else {
            for (k, _) in &chosen {
                pairs.push(("sort_key".into(), (*k).to_owned()));
            }
            for (_, d) in &chosen {
                pairs.push(("sort_dir".into(), if *d { "desc" } else { "asc" }.into()));
            }
        }
        sort.extend(chosen.iter().map(|(k, d)| ((*k).to_owned(), *d)));
    } else {
        sort.push(("created_at".into(), true));
    }
    for tie in ["created_at", "id"] {
        if !sort.iter().any(|(k, _)| k == tie) {
            sort.push((tie.into(), true));
        }
    }
    let limit = match rng.below(4) {
        0 => 25,
        _ => {
            let limit = rng.below(9);
            pairs.push(("limit".into(), limit.to_string()));
            limit
        }
    };
    match rng.below(10) {
        0..=4 => {}
        5..=8 => pairs.push(("marker".into(), some_id(rng))),
        _ => {
            let unseen = if rng.below(2) == 0 {
                seeded.foreign.clone()
            } else {
                uuid::Uuid::new_v4().to_string()
            };
            pairs.push(("marker".into(), unseen));
        }
    }
    Query { pairs, sort, limit }
}

fn query_string(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn the_list_matches_the_reference(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::new(&app);
    // Every other case on a store that always walks the sort's index, so both plans meet
    // every kind of filter. Started before the seeding, so that its start finds no imports
    // to resume among the seeded images.
    let walking = Client::walking(&app).await;
    let mut rng = Lcg(29);
    let seeded = seed(&app, &mut rng).await;
    let acme = seeded.acme.clone();
    let token = app
        .services
        .create_api_token(&acme, "list reference", "30")
        .await
        .unwrap()
        .secret;
    let docs = reference_docs(&app, &client, &token, &seeded).await;
    let mut pages = 0;
    for case in 0..300 {
        let query = random_query(&mut rng, &docs, &seeded);
        let path = format!("/v2/images?{}", query_string(&query.pairs));
        let client = if case % 2 == 0 { &client } else { &walking };
        let (status, body) = get(client, &token, &path).await;
        match reference_page(&docs, &query) {
            None => {
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "case {case}: {path}: {body}"
                );
                continue;
            }
            Some((expected, more)) => {
                assert_eq!(status, StatusCode::OK, "case {case}: {path}: {body}");
                let got = body["images"].as_array().unwrap();
                let ids = |list: &[Value]| -> Vec<String> {
                    list.iter()
                        .map(|d| d["id"].as_str().unwrap().to_owned())
                        .collect()
                };
                assert_eq!(ids(got), ids(&expected), "case {case}: {path}");
                assert_eq!(got, &expected, "case {case}: {path}: documents");
                // An empty page (limit=0) has no last image to go on from.
                let next_expected = more && !got.is_empty();
                assert_eq!(
                    body.get("next").is_some(),
                    next_expected,
                    "case {case}: {path}"
                );
                if let Some(next) = body["next"].as_str() {
                    let last = got.last().unwrap()["id"].as_str().unwrap();
                    assert!(next.ends_with(&format!("marker={last}")), "{next}");
                }
                pages += usize::from(!got.is_empty());
            }
        }
    }
    // The random cases did reach into the data.
    assert!(pages > 150, "only {pages} non-empty pages");

    // Following `next` from the first page reads every listed image once, across the
    // boundary between own and shared images, in every order.
    for sort in [
        "",
        "&sort=name:asc",
        "&sort=size:desc,name:asc",
        "&member_status=all",
    ] {
        let mut path = format!("/v2/images?limit=4{sort}");
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (status, body) = get(&client, &token, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            seen.extend(
                body["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_owned()),
            );
            match body["next"].as_str() {
                Some(next) => path = next.to_owned(),
                None => break,
            }
        }
        let member_all = sort.contains("member_status=all");
        let expected: Vec<&String> = seeded
            .visible
            .iter()
            .filter(|(_, m)| member_all || m.is_none_or(|s| s == ShareStatus::Accepted))
            .map(|(id, _)| id)
            .collect();
        let mut sorted_seen = seen.clone();
        sorted_seen.sort();
        sorted_seen.dedup();
        assert_eq!(sorted_seen.len(), seen.len(), "{sort}: an image twice");
        assert_eq!(seen.len(), expected.len(), "{sort}");
        assert!(expected.iter().all(|id| seen.contains(id)), "{sort}");
    }

    // An image in the Recycle Bin still marks a place: a client paging while images are
    // deleted goes on where it was. A marker the account cannot see is refused.
    let binned = &seeded.binned[0];
    let (status, body) = get(&client, &token, &format!("/v2/images?marker={binned}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(
        &client,
        &token,
        &format!("/v2/images?marker={}", seeded.foreign),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start again without it"),
        "{body}"
    );
}

/// A page whose last image is deleted before the next is asked for: the next page is the
/// one the client would have had.
async fn a_deleted_marker_keeps_its_place(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::new(&app);
    let mut rng = Lcg(7);
    let seeded = seed(&app, &mut rng).await;
    let acme = seeded.acme.clone();
    let token = app
        .services
        .create_api_token(&acme, "list reference", "30")
        .await
        .unwrap()
        .secret;
    let docs = reference_docs(&app, &client, &token, &seeded).await;
    // Own, unprotected, Active images only, so the marker can go to the Recycle Bin.
    let filters = "owner=acme&protected=false&status=active&limit=5&sort=name:asc";
    let (_, first) = get(&client, &token, &format!("/v2/images?{filters}")).await;
    let page: Vec<Value> = first["images"].as_array().unwrap().clone();
    let marker = page.last().unwrap()["id"].as_str().unwrap().to_owned();
    let pairs = url::form_urlencoded::parse(filters.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain([("marker".to_owned(), marker.clone())])
        .collect();
    let query = Query {
        pairs,
        sort: vec![
            ("name".into(), false),
            ("created_at".into(), true),
            ("id".into(), true),
        ],
        limit: 5,
    };
    let (expected, _) = reference_page(&docs, &query).unwrap();
    assert!(!expected.is_empty());
    app.services.delete_image(&acme, &marker).await.unwrap();
    let (status, _) = get(&client, &token, &format!("/v2/images/{marker}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let next = first["next"].as_str().unwrap();
    let (status, body) = get(&client, &token, next).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["images"].as_array().unwrap(), &expected);
}

/// The process's resident memory, in bytes (nextest runs each test in its own process).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Reads a list's body as a client would, keeping only its length.
async fn list_length(client: &Client, token: &str, path: &str) -> usize {
    let request = Request::get(path)
        .header("x-auth-token", token)
        .body(Body::empty())
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut length = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            length += data.len();
        }
    }
    length
}

/// 1,000 images with 128 properties of 1,024 characters each (128 MiB of properties): 16
/// lists of 100 images at once (13 MiB of JSON each) grow the process by less than 32 MiB,
/// since a list holds a few images' properties at a time, never the account's or the page's.
async fn many_long_properties_keep_memory_bounded(backend: Backend) {
    const IMAGES: usize = 1000;
    const PROPERTIES: usize = 128;
    let app = TestApp::spawn(backend).await;
    let client = Client::new(&app);
    let store = app.services.store();
    let acme = app.sign_up("acme").await.actor;
    let mut rng = Lcg(3);
    let rows: Vec<_> = (0..IMAGES)
        .map(|n| image_row(&mut rng, "acme", n, ImageStatus::Active))
        .collect();
    store.insert_images_bulk(&rows).await.unwrap();
    // Ten images at a time, so seeding never holds much of it in memory.
    for batch in rows.chunks(10) {
        let properties: Vec<(String, String, String)> = batch
            .iter()
            .flat_map(|(row, ..)| {
                (0..PROPERTIES).map(|k| {
                    let value = format!("{k:04}").repeat(256);
                    (row.id.clone(), format!("custom.p{k:03}"), value)
                })
            })
            .collect();
        store
            .insert_properties_bulk("acme", &properties)
            .await
            .unwrap();
    }
    let token = app
        .services
        .create_api_token(&acme, "memory", "30")
        .await
        .unwrap()
        .secret;
    let path = "/v2/images?limit=100";
    let sixteen = || {
        futures::future::join_all((0..16).map(|_| {
            let (client, token) = (client.clone(), token.clone());
            tokio::spawn(async move { list_length(&client, &token, path).await })
        }))
    };
    // One list first: its connection, caches and the allocator's arenas reach their
    // working size.
    let one = list_length(&client, &token, path).await;
    assert!(one > 100 * PROPERTIES * 1024, "{one} bytes");
    let before = resident_bytes();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(resident_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
    };
    for list in sixteen().await {
        assert_eq!(list.unwrap(), one);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let growth = peak.load(std::sync::atomic::Ordering::Relaxed) - before;
    println!(
        "16 lists of {one} bytes each: resident memory grew by {:.1} MiB",
        growth as f64 / (1 << 20) as f64
    );
    assert!(growth < 32 << 20, "grew by {growth} bytes");
}

crate::on_both_databases!(
    the_list_matches_the_reference,
    a_deleted_marker_keeps_its_place,
    many_long_properties_keep_memory_bounded,
);
