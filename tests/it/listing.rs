//! Image List: search, filters, sort, pages and totals; batch Delete; quotas; CSV export.

use image_console::domain::deprecation::Inclusion;
use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::Visibility;
use image_console::domain::list_query::{ListQuery, SortColumn, SortDirection};
use image_console::domain::os_catalogue::OsPlatform;
use image_console::service::{Actor, ServiceError};
use image_console::store::ListTotal;

use crate::support::{
    Backend, Seed, SourceServer, TestApp, create_form, seed_image, test_settings,
};

fn names(page: &image_console::domain::list_query::ImagePage) -> Vec<&str> {
    page.images.iter().map(|i| i.name.as_str()).collect()
}

/// Name, OS type, visibility, status, size and tags of a catalogue image.
type CatalogueRow = (
    &'static str,
    OsPlatform,
    Visibility,
    ImageStatus,
    u64,
    &'static [(&'static str, &'static str)],
);

/// Twelve images with distinct names, statuses, OS types, visibilities, sizes and tags.
async fn seed_catalogue(app: &TestApp, actor: &Actor) {
    let rows: [CatalogueRow; 12] = [
        (
            "web-01",
            OsPlatform::Ubuntu,
            Visibility::Private,
            ImageStatus::Active,
            300,
            &[("env", "prod")],
        ),
        (
            "web-02",
            OsPlatform::Ubuntu,
            Visibility::Shared,
            ImageStatus::Active,
            100,
            &[("env", "dev")],
        ),
        (
            "WEB-legacy",
            OsPlatform::CentOS,
            Visibility::Private,
            ImageStatus::Failed,
            0,
            &[],
        ),
        (
            "db-primary",
            OsPlatform::Rhel,
            Visibility::Private,
            ImageStatus::Active,
            900,
            &[("env", "prod"), ("tier", "db")],
        ),
        (
            "db-replica",
            OsPlatform::Rhel,
            Visibility::Shared,
            ImageStatus::Importing,
            500,
            &[("tier", "db")],
        ),
        (
            "cache",
            OsPlatform::Rocky,
            Visibility::Private,
            ImageStatus::Queued,
            0,
            &[],
        ),
        (
            "batch_50%_off",
            OsPlatform::Alma,
            Visibility::Private,
            ImageStatus::Active,
            50,
            &[],
        ),
        (
            "batch_500",
            OsPlatform::Alma,
            Visibility::Private,
            ImageStatus::Active,
            500,
            &[],
        ),
        (
            "gpu-train",
            OsPlatform::Ubuntu,
            Visibility::Private,
            ImageStatus::Active,
            700,
            &[("env", "prod")],
        ),
        (
            "gpu-serve",
            OsPlatform::Ubuntu,
            Visibility::Shared,
            ImageStatus::Active,
            600,
            &[],
        ),
        (
            "oracle-erp",
            OsPlatform::Oracle,
            Visibility::Private,
            ImageStatus::Active,
            200,
            &[("env", "")],
        ),
        (
            "bastion",
            OsPlatform::Rocky,
            Visibility::Private,
            ImageStatus::Active,
            10,
            &[],
        ),
    ];
    for (i, (name, os_type, visibility, status, size, tags)) in rows.into_iter().enumerate() {
        seed_image(
            &app.services,
            actor,
            Seed {
                name,
                os_platform: os_type,
                visibility,
                status,
                size_bytes: size,
                tags,
                created_at_ms: 1_700_000_000_000 + i as i64 * 1000,
                ..Seed::default()
            },
        )
        .await;
    }
}

/// Queries that each plan answers its own way: searches of each length, tags, filters.
fn plan_views() -> Vec<ListQuery> {
    let q = |f: &dyn Fn(&mut ListQuery)| {
        let mut query = ListQuery {
            per_page: 100,
            ..ListQuery::default()
        };
        f(&mut query);
        query
    };
    vec![
        q(&|q| q.search = "web".into()),
        q(&|q| q.search = "W".into()),
        q(&|q| q.search = "b".into()),
        q(&|q| q.search = "db".into()),
        q(&|q| q.search = "-0".into()),
        q(&|q| q.search = "50%".into()),
        q(&|q| q.search = "h_5".into()),
        q(&|q| q.search = "DB-".into()),
        q(&|q| q.tag_key = "env".into()),
        q(&|q| {
            q.tag_key = "env".into();
            q.tag_value = "prod".into();
        }),
        q(&|q| {
            q.tag_key = "tier".into();
            q.search = "replica".into();
        }),
        q(&|q| {
            q.status = Some(ImageStatus::Active);
            q.os_platform = Some(OsPlatform::Ubuntu);
        }),
        q(&|q| {
            q.os_platform = Some(OsPlatform::Ubuntu);
            q.visibility = Some(Visibility::Private);
        }),
        q(&|q| {
            q.search = "e".into();
            q.status = Some(ImageStatus::Active);
            q.visibility = Some(Visibility::Private);
        }),
        q(&|q| {
            q.tag_key = "env".into();
            q.os_platform = Some(OsPlatform::Ubuntu);
        }),
        q(&|q| {
            q.tag_key = "env".into();
            q.tag_value = "prod".into();
            q.status = Some(ImageStatus::Active);
            q.search = "-".into();
        }),
    ]
}

/// Every query plan gives the plain answer (a filter over the rows, sorted, sliced): the
/// counters, the search index with few matches (fetched and sorted) and with many (read in
/// creation order, or by walking the sort's index). A candidate limit of 0 makes every
/// match count as many; a count bound of 3 makes a search's total "more than 3" unless
/// every match is asked for, and must change no page.
async fn assert_every_plan_agrees(
    store: &image_console::store::Store,
    account_id: &str,
    views: &[ListQuery],
    now_ms: i64,
    require_matches: bool,
) {
    let plans = [
        (store.clone(), None),
        (store.clone().with_candidate_limit(0), None),
        (store.clone().with_count_bound(3), Some(3)),
        (
            store.clone().with_candidate_limit(0).with_count_bound(3),
            Some(3),
        ),
    ];
    let ids = |rows: &[image_console::store::images::ImageRow]| -> Vec<String> {
        rows.iter().map(|r| r.id.clone()).collect()
    };
    for view in views {
        let mut matched = 0;
        for (sort, direction) in [
            (SortColumn::Created, SortDirection::Desc),
            (SortColumn::Created, SortDirection::Asc),
            (SortColumn::Name, SortDirection::Asc),
            (SortColumn::Size, SortDirection::Desc),
        ] {
            for (page, per_page) in [(1, 100), (2, 10), (3, 2)] {
                let query = ListQuery {
                    sort,
                    direction,
                    page,
                    per_page,
                    ..view.clone()
                };
                let plain = store
                    .list_matching_images(account_id, &query, now_ms)
                    .await
                    .unwrap();
                matched = plain.len();
                let expected: Vec<String> = ids(&plain)
                    .into_iter()
                    .skip(query.offset() as usize)
                    .take(per_page as usize)
                    .collect();
                let matches = plain.len() as u64;
                for (plan, bound) in &plans {
                    for count_all in [false, true] {
                        let query = ListQuery {
                            count_all,
                            ..query.clone()
                        };
                        let (rows, total) =
                            plan.list_images(account_id, &query, now_ms).await.unwrap();
                        assert_eq!(ids(&rows), expected, "{query:?} {bound:?}");
                        let expected_total = match bound {
                            Some(b) if !count_all && !query.search.is_empty() && matches > *b => {
                                ListTotal {
                                    count: *b,
                                    more: true,
                                }
                            }
                            _ => ListTotal {
                                count: matches,
                                more: false,
                            },
                        };
                        assert_eq!(total, expected_total, "{query:?} {bound:?}");
                    }
                }
            }
        }
        assert!(
            !require_matches || matched > 0,
            "{view:?} matches something"
        );
    }
}

async fn search_filters_sort_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let other = app.sign_up("other").await;
    seed_catalogue(&app, &actor).await;
    seed_image(
        &app.services,
        &other,
        Seed {
            name: "web-other-account",
            ..Seed::default()
        },
    )
    .await;
    let list = |query: ListQuery| {
        let services = app.services.clone();
        let actor = actor.clone();
        async move { services.list_images(&actor, &query).await.unwrap() }
    };
    let q = |f: &dyn Fn(&mut ListQuery)| {
        let mut query = ListQuery {
            per_page: 100,
            ..ListQuery::default()
        };
        f(&mut query);
        query
    };

    // Default: newest first, every image of the account and no other.
    let all = list(q(&|_| {})).await;
    assert_eq!(all.total, 12);
    assert_eq!(all.images.first().unwrap().name, "bastion");
    assert_eq!(all.images.last().unwrap().name, "web-01");

    // Search: a substring, any case, wildcards taken literally.
    let web = list(q(&|q| q.search = "web".into())).await;
    assert_eq!(names(&web), ["WEB-legacy", "web-02", "web-01"]);
    assert_eq!(list(q(&|q| q.search = "EB-0".into())).await.total, 2);
    assert_eq!(
        names(&list(q(&|q| q.search = "50%".into())).await),
        ["batch_50%_off"]
    );
    assert_eq!(
        names(&list(q(&|q| q.search = "h_5".into())).await),
        ["batch_500", "batch_50%_off"]
    );
    assert_eq!(
        list(q(&|q| q.search = "b_t".into())).await.total,
        0,
        "'_' is not a wildcard"
    );
    assert_eq!(
        list(q(&|q| q.search = "nothing like it".into()))
            .await
            .total,
        0
    );

    // Each filter, and filters together.
    assert_eq!(
        list(q(&|q| q.status = Some(ImageStatus::Active)))
            .await
            .total,
        9
    );
    assert_eq!(
        names(&list(q(&|q| q.status = Some(ImageStatus::Failed))).await),
        ["WEB-legacy"]
    );
    assert_eq!(
        names(&list(q(&|q| q.status = Some(ImageStatus::Queued))).await),
        ["cache"]
    );
    assert_eq!(
        names(&list(q(&|q| q.status = Some(ImageStatus::Importing))).await),
        ["db-replica"]
    );
    assert_eq!(
        list(q(&|q| q.os_platform = Some(OsPlatform::Ubuntu)))
            .await
            .total,
        4
    );
    assert_eq!(
        list(q(&|q| q.visibility = Some(Visibility::Shared)))
            .await
            .total,
        3
    );
    assert_eq!(
        names(
            &list(q(&|q| {
                q.os_platform = Some(OsPlatform::Ubuntu);
                q.visibility = Some(Visibility::Shared);
            }))
            .await
        ),
        ["gpu-serve", "web-02"]
    );
    assert_eq!(list(q(&|q| q.tag_key = "env".into())).await.total, 5);
    assert_eq!(
        names(
            &list(q(&|q| {
                q.tag_key = "env".into();
                q.tag_value = "prod".into();
            }))
            .await
        ),
        ["gpu-train", "db-primary", "web-01"]
    );
    assert_eq!(
        names(&list(q(&|q| q.tag_key = "tier".into())).await),
        ["db-replica", "db-primary"]
    );
    assert_eq!(
        names(
            &list(q(&|q| {
                q.search = "db".into();
                q.status = Some(ImageStatus::Active);
            }))
            .await
        ),
        ["db-primary"]
    );

    // Sorting by each column.
    let by = |column, direction| {
        q(&move |q| {
            q.sort = column;
            q.direction = direction;
        })
    };
    let by_name = list(by(SortColumn::Name, SortDirection::Asc)).await;
    let mut sorted: Vec<&str> = names(&by_name);
    sorted.sort();
    assert_eq!(names(&by_name), sorted);
    let by_name_desc = list(by(SortColumn::Name, SortDirection::Desc)).await;
    assert_eq!(names(&by_name_desc).first(), sorted.last());
    let by_size = list(by(SortColumn::Size, SortDirection::Desc)).await;
    let sizes: Vec<Option<u64>> = by_size.images.iter().map(|i| i.size_bytes).collect();
    assert_eq!(&sizes[..3], [Some(900), Some(700), Some(600)]);
    // Images without a size (not yet Active) come last in either direction.
    assert_eq!(&sizes[9..], [None, None, None]);
    let by_size_asc = list(by(SortColumn::Size, SortDirection::Asc)).await;
    assert_eq!(by_size_asc.images[0].size_bytes, Some(10));
    assert_eq!(by_size_asc.images[11].size_bytes, None);
    let by_status = list(by(SortColumn::Status, SortDirection::Asc)).await;
    let statuses: Vec<&str> = by_status.images.iter().map(|i| i.status.as_str()).collect();
    let mut sorted_statuses = statuses.clone();
    sorted_statuses.sort();
    assert_eq!(statuses, sorted_statuses);
    let by_os = list(by(SortColumn::OsType, SortDirection::Desc)).await;
    assert_eq!(
        by_os.images[0].os.as_ref().map(|os| os.platform),
        Some(OsPlatform::Ubuntu)
    );
    let by_visibility = list(by(SortColumn::Visibility, SortDirection::Desc)).await;
    assert_eq!(by_visibility.images[0].visibility, Visibility::Shared);
    let oldest = list(by(SortColumn::Created, SortDirection::Asc)).await;
    assert_eq!(oldest.images[0].name, "web-01");

    // Every query plan gives the plain answer (a filter over the rows, sorted, sliced): the
    // counters, the search index with few matches (fetched and sorted) and with many (read in
    // creation order, or by walking the sort's index). A candidate limit of 0 makes every
    // match count as many; a count bound of 3 makes a search's total "more than 3" unless
    // every match is asked for, and must change no page.
    assert_every_plan_agrees(
        app.services.store(),
        &actor.account_id,
        &plan_views(),
        0,
        true,
    )
    .await;

    // Pages: the total counts every match; pages hold per_page rows, the last the rest.
    let page = |n, per_page| ListQuery {
        page: n,
        per_page,
        ..ListQuery::default()
    };
    let first = list(page(1, 10)).await;
    assert_eq!(
        (first.images.len(), first.total, first.page_count()),
        (10, 12, 2)
    );
    let second = list(page(2, 10)).await;
    assert_eq!((second.images.len(), second.total), (2, 12));
    assert_eq!(names(&second), ["web-02", "web-01"]);
    let beyond = list(page(5, 10)).await;
    assert_eq!((beyond.images.len(), beyond.total), (0, 12));
    let mut seen: Vec<String> = first
        .images
        .iter()
        .chain(&second.images)
        .map(|i| i.id.clone())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "pages neither repeat nor skip images");
    let filtered_page = list(ListQuery {
        page: 2,
        per_page: 10,
        status: Some(ImageStatus::Active),
        ..ListQuery::default()
    })
    .await;
    assert_eq!((filtered_page.images.len(), filtered_page.total), (0, 9));
}

async fn batch_delete_skips_protected_images(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let a = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "a",
            ..Seed::default()
        },
    )
    .await;
    let b = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "b",
            status: ImageStatus::Failed,
            ..Seed::default()
        },
    )
    .await;
    let kept = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "kept",
            protected: true,
            ..Seed::default()
        },
    )
    .await;
    let other = app.sign_up("other").await;
    let foreign = seed_image(
        &app.services,
        &other,
        Seed {
            name: "foreign",
            ..Seed::default()
        },
    )
    .await;

    let result = app
        .services
        .delete_images(
            &actor,
            &[
                a.clone(),
                b.clone(),
                kept.clone(),
                foreign.clone(),
                a.clone(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(result.deleted, ["a", "b"]);
    let skipped: Vec<(&str, &str)> = result
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                "kept",
                "This image is Protected. Turn Protected off before deleting it; Protected prevents accidental deletion."
            ),
            (
                foreign.as_str(),
                "No image with that ID exists in this account."
            ),
        ]
    );
    let left: Vec<String> = crate::support::all_images(&app.services, &actor)
        .await
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(left, ["kept"]);
    assert_eq!(
        crate::support::all_images(&app.services, &other)
            .await
            .len(),
        1,
        "other accounts are untouched"
    );

    let empty = app.services.delete_images(&actor, &[]).await.unwrap_err();
    assert!(matches!(empty, ServiceError::Invalid(_)));
    let too_many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    assert!(matches!(
        app.services.delete_images(&actor, &too_many).await,
        Err(ServiceError::Invalid(_))
    ));
}

async fn quotas_refuse_new_images(backend: Backend) {
    let mut settings = test_settings();
    settings.max_images_per_account = 2;
    settings.max_storage_bytes_per_account = 1 << 20;
    let app = TestApp::spawn_with(backend, settings).await;
    let actor = app.sign_up("acme").await;
    seed_image(
        &app.services,
        &actor,
        Seed {
            name: "one",
            size_bytes: 1000,
            ..Seed::default()
        },
    )
    .await;

    let usage = app.services.account_usage(&actor).await.unwrap();
    assert_eq!(
        (usage.image_count, usage.image_limit, usage.stored_bytes),
        (1, 2, 1000)
    );

    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let url = source.url("files", "disk.qcow2");
    let second = app
        .services
        .create_image(&actor, &create_form("two", &url))
        .await
        .unwrap();
    app.wait_for_import(&actor, &second).await;
    let refused = app
        .services
        .create_image(&actor, &create_form("three", &url))
        .await
        .unwrap_err();
    let ServiceError::Conflict(message) = refused else {
        panic!("expected a quota conflict, got {refused:?}")
    };
    assert_eq!(
        message,
        "This account already has 2 of its 2 images. Delete images you no longer need before creating more."
    );
    assert_eq!(
        crate::support::all_images(&app.services, &actor)
            .await
            .len(),
        2,
        "nothing was created"
    );

    // Storage: an account at its storage quota cannot create, and an import that does not
    // fit in what is left fails with the reason.
    let full = app.sign_up("full").await;
    seed_image(
        &app.services,
        &full,
        Seed {
            name: "big",
            size_bytes: 1 << 20,
            ..Seed::default()
        },
    )
    .await;
    let refused = app
        .services
        .create_image(&full, &create_form("more", &url))
        .await
        .unwrap_err();
    let ServiceError::Conflict(message) = refused else {
        panic!("expected a storage conflict")
    };
    assert_eq!(
        message,
        "This account stores 1 MB of its 1 MB storage quota. Delete images you no longer need before creating more."
    );
    let tight = app.sign_up("tight").await;
    seed_image(
        &app.services,
        &tight,
        Seed {
            name: "most",
            size_bytes: (1 << 20) - 1000,
            ..Seed::default()
        },
    )
    .await;
    let id = app
        .services
        .create_image(&tight, &create_form("too big", &url))
        .await
        .unwrap();
    let image = app.wait_for_import(&tight, &id).await;
    assert_eq!(image.status, ImageStatus::Failed);
    let reason = image.failure_reason.unwrap();
    assert!(
        reason.starts_with(
            "Storage quota exceeded: the image needs 192 KB and the account's quota of 1 MB has"
        ),
        "{reason}"
    );
}

async fn csv_export_escapes_and_neutralises(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    seed_image(
        &app.services,
        &actor,
        Seed {
            name: "formula",
            description: "=HYPERLINK(\"http://evil\")",
            created_at_ms: 1,
            ..Seed::default()
        },
    )
    .await;
    seed_image(
        &app.services,
        &actor,
        Seed {
            name: "quoting",
            description: "a, \"quoted\" word\nand a second line",
            created_at_ms: 2,
            ..Seed::default()
        },
    )
    .await;
    seed_image(
        &app.services,
        &actor,
        Seed {
            name: "plain",
            description: "-1 @home +x",
            created_at_ms: 3,
            ..Seed::default()
        },
    )
    .await;
    seed_image(
        &app.services,
        &actor,
        Seed {
            name: "filtered out",
            status: ImageStatus::Failed,
            created_at_ms: 4,
            ..Seed::default()
        },
    )
    .await;

    let query = ListQuery {
        status: Some(ImageStatus::Active),
        ..ListQuery::default()
    };
    let csv = app
        .services
        .export_images_csv(&actor, &query)
        .await
        .unwrap();
    let text = String::from_utf8(csv.clone()).unwrap();
    // RFC 4180: CRLF rows, quoted fields with doubled quotes, the newline kept inside quotes.
    assert!(
        text.starts_with(
            "Name,Resource ID,Status,Operating system,System platform,System version,Visibility,Protected,Size (bytes),"
        ),
        "{text}"
    );
    assert!(text.contains("\r\n"));
    assert!(
        text.contains("\"a, \"\"quoted\"\" word\nand a second line\""),
        "{text}"
    );
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{text}"
    );
    assert!(text.contains("'-1 @home +x"), "{text}");
    assert!(!text.contains("filtered out"));

    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(names, ["plain", "quoting", "formula"]);
    let description = |name: &str| rows.iter().find(|r| &r[0] == name).unwrap()[18].to_owned();
    assert_eq!(
        description("quoting"),
        "a, \"quoted\" word\nand a second line"
    );
    assert_eq!(description("formula"), "'=HYPERLINK(\"http://evil\")");
    assert_eq!(rows[0][2].to_owned(), "Active");
}

/// The totals the list shows come from counters kept by triggers; they must always equal a
/// count of the rows, through every kind of change.
async fn totals_always_equal_a_row_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let other = app.sign_up("other").await;
    seed_catalogue(&app, &actor).await;
    seed_catalogue(&app, &other).await;
    let views = || {
        let mut views = vec![ListQuery::default()];
        for status in ImageStatus::ALL {
            views.push(ListQuery {
                status: Some(status),
                ..ListQuery::default()
            });
        }
        for os in OsPlatform::ALL {
            views.push(ListQuery {
                os_platform: Some(os),
                ..ListQuery::default()
            });
        }
        for visibility in Visibility::ALL {
            views.push(ListQuery {
                visibility: Some(visibility),
                ..ListQuery::default()
            });
        }
        for (key, value) in [
            ("env", ""),
            ("env", "prod"),
            ("env", "dev"),
            ("tier", "db"),
            ("none", ""),
        ] {
            views.push(ListQuery {
                tag_key: key.into(),
                tag_value: value.into(),
                ..ListQuery::default()
            });
        }
        // Searches of every length, and filters combined, which the search index counts.
        for search in ["w", "db", "web", "-0", "renamed", "RENAMED-IMA"] {
            views.push(ListQuery {
                search: search.into(),
                ..ListQuery::default()
            });
            views.push(ListQuery {
                search: search.into(),
                status: Some(ImageStatus::Active),
                ..ListQuery::default()
            });
        }
        views.push(ListQuery {
            status: Some(ImageStatus::Active),
            os_platform: Some(OsPlatform::Oracle),
            ..ListQuery::default()
        });
        views.push(ListQuery {
            os_platform: Some(OsPlatform::Ubuntu),
            visibility: Some(Visibility::Shared),
            ..ListQuery::default()
        });
        views.push(ListQuery {
            tag_key: "env".into(),
            tag_value: "prod".into(),
            status: Some(ImageStatus::Active),
            ..ListQuery::default()
        });
        views.push(ListQuery {
            tag_key: "tier".into(),
            search: "e".into(),
            ..ListQuery::default()
        });
        // Tags counted per status, OS type and visibility, which move when those change;
        // and a search within each status (the Recycle Bin's are found only this way).
        for status in ImageStatus::ALL {
            views.push(ListQuery {
                search: "e".into(),
                status: Some(status),
                ..ListQuery::default()
            });
            views.push(ListQuery {
                tag_key: "tier".into(),
                status: Some(status),
                ..ListQuery::default()
            });
            views.push(ListQuery {
                tag_key: "env".into(),
                tag_value: "prod".into(),
                status: Some(status),
                os_platform: Some(OsPlatform::Ubuntu),
                ..ListQuery::default()
            });
            views.push(ListQuery {
                status: Some(status),
                visibility: Some(Visibility::Private),
                ..ListQuery::default()
            });
        }
        views
    };
    let check = |when: &'static str| {
        let app = &app;
        let actor = actor.clone();
        async move {
            for view in views() {
                // Page 2 of pages of 1 always asks for the total.
                let paged = ListQuery {
                    page: 2,
                    per_page: 10,
                    ..view.clone()
                };
                let shown = app
                    .services
                    .list_images(&actor, &paged)
                    .await
                    .unwrap()
                    .total;
                let exact = app
                    .services
                    .store()
                    .count_images_exactly(&actor.account_id, &view, 0)
                    .await
                    .unwrap();
                assert_eq!(shown, exact, "{when}: {view:?}");
            }
        }
    };
    check("after seeding").await;

    let ids: Vec<String> = crate::support::all_images(&app.services, &actor)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    let store = app.services.store();
    // Status changes: a queued image imported, an importing one failed, another requeued.
    let queued = crate::support::all_images(&app.services, &actor)
        .await
        .into_iter()
        .find(|i| i.status == ImageStatus::Queued)
        .unwrap();
    let fence = crate::support::import_fence(store, &queued.id).await;
    store
        .claim_import(&actor.account_id, &queued.id, &fence, 5)
        .await
        .unwrap();
    store
        .fail_import(&actor.account_id, &queued.id, &fence, "test", 6)
        .await
        .unwrap();
    let importing = crate::support::all_images(&app.services, &actor)
        .await
        .into_iter()
        .find(|i| i.status == ImageStatus::Importing)
        .unwrap();
    let fence = crate::support::import_fence(store, &importing.id).await;
    store
        .requeue_import(&actor.account_id, &importing.id, &fence, 7)
        .await
        .unwrap();
    check("after status changes").await;

    // Edits of name and OS type, tags added, changed and removed, and deletions.
    let image = app.services.get_image(&actor, &ids[0]).await.unwrap();
    let form = image_console::domain::image_spec::EditImageForm {
        attributes: image_console::domain::image_spec::AttributesForm {
            name: "Renamed-image".into(),
            os_family: "linux".into(),
            os_platform: "oracle".into(),
            min_disk: "1".into(),
            min_ram: "1".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    app.services
        .update_image(&actor, &ids[0], &form, image.updated_at_ms)
        .await
        .unwrap();
    app.services
        .put_image_tag(&actor, &ids[1], None, "env", "prod")
        .await
        .ok();
    app.services
        .put_image_tag(&actor, &ids[2], None, "tier", "web")
        .await
        .unwrap();
    app.services
        .remove_image_tag(&actor, &ids[3], "env")
        .await
        .unwrap();
    app.services
        .delete_images(&actor, &ids[4..8])
        .await
        .unwrap();
    check("after edits, tag changes and deletions").await;

    // The lifecycle: Deactivate, Delete to the Recycle Bin, Restore, Deleting, Destroy and
    // the purge, each moving the image between the counters' cells.
    let active: Vec<String> = crate::support::all_images(&app.services, &actor)
        .await
        .into_iter()
        .filter(|i| i.status == ImageStatus::Active && !i.protected)
        .map(|i| i.id)
        .collect();
    assert!(active.len() >= 5, "{active:?}");
    app.services
        .set_image_activation(&actor, &active[0], true)
        .await
        .unwrap();
    check("after Deactivate").await;
    app.services
        .delete_images(&actor, &active[..4])
        .await
        .unwrap();
    check("after Delete to the Recycle Bin").await;
    app.services
        .restore_images(&actor, &active[..1])
        .await
        .unwrap();
    check("after Restore").await;
    let bin = app.services.recycle_bin(&actor).await.unwrap();
    store
        .begin_destroy(&actor.account_id, &bin.images[0].id, "test", 8)
        .await
        .unwrap();
    check("while Deleting").await;
    app.services
        .destroy_images(&actor, std::slice::from_ref(&bin.images[1].id))
        .await
        .unwrap();
    check("after Destroy").await;
    let far = image_console::service::now_ms() + 400 * 86_400_000;
    assert!(app.services.purge_recycle_bin(far).await.unwrap() >= 1);
    assert!(
        app.services
            .recycle_bin(&actor)
            .await
            .unwrap()
            .images
            .is_empty()
    );
    check("after the purge").await;
}

/// The Encrypted filter, alone and with a search, a status and a tag, in every sort and
/// direction: each page is exactly the matching rows' slice, the total their number, and a
/// shared image counts on its owner's encryption.
async fn the_encrypted_filter_pages_match_the_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let other = app.sign_up("other").await;
    seed_catalogue(&app, &actor).await;
    seed_catalogue(&app, &other).await;
    let store = app.services.store();
    // Every third image is encrypted (the filter reads only whether a key is named).
    for account in ["acme", "other"] {
        sqlx::query(
            "UPDATE images SET encryption_key_id = 'k' WHERE account_id = $1 AND seq % 3 = 0",
        )
        .bind(account)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let shared = crate::support::all_images(&app.services, &other)
        .await
        .into_iter()
        .find(|i| i.encrypted && i.status == ImageStatus::Active)
        .unwrap();
    app.services
        .share_image(&other, &shared.id, "acme")
        .await
        .unwrap();
    app.services
        .decide_shares(
            &actor,
            std::slice::from_ref(&shared.id),
            image_console::domain::share::ShareDecision::Approve,
        )
        .await
        .unwrap();
    let bases = [
        ListQuery::default(),
        ListQuery {
            search: "e".into(),
            ..ListQuery::default()
        },
        ListQuery {
            status: Some(ImageStatus::Active),
            ..ListQuery::default()
        },
        ListQuery {
            tag_key: "env".into(),
            ..ListQuery::default()
        },
    ];
    for base in bases {
        for encrypted in [Some(true), Some(false)] {
            for sort in SortColumn::ALL {
                for direction in [SortDirection::Asc, SortDirection::Desc] {
                    let view = ListQuery {
                        encrypted,
                        sort,
                        direction,
                        per_page: 10,
                        ..base.clone()
                    };
                    let all: Vec<String> = store
                        .list_matching_images(&actor.account_id, &view, 0)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|r| r.id)
                        .collect();
                    assert!(!all.is_empty() || base.status.is_some(), "{view:?}");
                    for page in 1..=3u32 {
                        let shown = app
                            .services
                            .list_images(
                                &actor,
                                &ListQuery {
                                    page,
                                    ..view.clone()
                                },
                            )
                            .await
                            .unwrap();
                        assert_eq!(shown.total, all.len() as u64, "{view:?}");
                        let expected: Vec<&String> =
                            all.iter().skip((page as usize - 1) * 10).take(10).collect();
                        let got: Vec<&String> = shown.images.iter().map(|i| &i.id).collect();
                        assert_eq!(got, expected, "page {page} of {view:?}");
                        assert!(shown.images.iter().all(|i| Some(i.encrypted) == encrypted));
                    }
                }
            }
        }
    }
    let encrypted = ListQuery {
        encrypted: Some(true),
        ..ListQuery::default()
    };
    assert!(
        app.services
            .list_images(&actor, &encrypted)
            .await
            .unwrap()
            .images
            .iter()
            .any(|i| i.id == shared.id),
        "the shared encrypted image is listed"
    );
    assert_eq!(
        ListQuery::from_params(|k| (k == "encrypted").then(|| "yes".to_owned())).encrypted,
        Some(true)
    );
    assert_eq!(encrypted.to_query_string(), "encrypted=yes");
}

/// Deprecated images (from their time on) and hidden ones leave the default list; the
/// Deprecated and Hidden filters show them alone or with the rest. Every plan (counters less
/// what is left out, the search index, the rows) gives the rows' answer, at a time passed in.
async fn deprecated_and_hidden_images_leave_default_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    seed_catalogue(&app, &actor).await;
    let store = app.services.store();
    let now = app.services.settings().clock.now_ms();
    // Every fifth image hidden; every fourth deprecated an hour ago, the next ones in an hour.
    for sql in [
        "UPDATE images SET os_hidden = 1 WHERE account_id = $1 AND seq % 5 = 0",
        "UPDATE images SET deprecate_at = $2 - 3600000 WHERE account_id = $1 AND seq % 4 = 1",
        "UPDATE images SET deprecate_at = $2 + 3600000 WHERE account_id = $1 AND seq % 4 = 2",
    ] {
        sqlx::query(sql)
            .bind("acme")
            .bind(now)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let all = store
        .list_matching_images(
            "acme",
            &ListQuery {
                deprecated: Inclusion::Include,
                hidden: Inclusion::Include,
                ..ListQuery::default()
            },
            now,
        )
        .await
        .unwrap();
    let hidden = all.iter().filter(|r| r.os_hidden).count() as u64;
    let deprecated = all
        .iter()
        .filter(|r| r.deprecate_at_ms.is_some_and(|at| at <= now))
        .count() as u64;
    let either = all
        .iter()
        .filter(|r| r.os_hidden || r.deprecate_at_ms.is_some_and(|at| at <= now))
        .count() as u64;
    assert!(hidden > 0 && deprecated > 0 && either < 12);

    let total = |deprecated, hidden| {
        let query = ListQuery {
            deprecated,
            hidden,
            ..ListQuery::default()
        };
        let services = app.services.clone();
        let actor = actor.clone();
        async move { services.list_images(&actor, &query).await.unwrap() }
    };
    let default = total(Inclusion::Exclude, Inclusion::Exclude).await;
    assert_eq!(default.total, 12 - either);
    assert!(default.images.iter().all(|i| !i.deprecated && !i.hidden));
    let only = total(Inclusion::Only, Inclusion::Include).await;
    assert_eq!(only.total, deprecated);
    assert!(only.images.iter().all(|i| i.deprecated));
    assert_eq!(
        total(Inclusion::Include, Inclusion::Only).await.total,
        hidden
    );
    assert_eq!(
        total(Inclusion::Include, Inclusion::Include).await.total,
        12
    );
    // An hour on, the next ones are deprecated too.
    app.services
        .settings()
        .clock
        .advance(std::time::Duration::from_secs(7200));
    assert!(total(Inclusion::Only, Inclusion::Include).await.total > deprecated);

    // Every other view (each kind of plan still among them), with each inclusion.
    let mut views = Vec::new();
    for base in plan_views().into_iter().step_by(2) {
        for (deprecated, hidden) in [
            (Inclusion::Exclude, Inclusion::Exclude),
            (Inclusion::Only, Inclusion::Exclude),
            (Inclusion::Include, Inclusion::Only),
            (Inclusion::Exclude, Inclusion::Include),
        ] {
            views.push(ListQuery {
                deprecated,
                hidden,
                ..base.clone()
            });
        }
    }
    assert_every_plan_agrees(store, "acme", &views, now, false).await;
}

crate::on_both_databases!(
    deprecated_and_hidden_images_leave_default_lists,
    the_encrypted_filter_pages_match_the_rows,
    totals_always_equal_a_row_count,
    search_filters_sort_and_pages,
    batch_delete_skips_protected_images,
    quotas_refuse_new_images,
    csv_export_escapes_and_neutralises,
);
