//! The authorization matrix. Built from the list of every registered server function, every
//! plain HTTP route and every page, so a new one without a row here fails the test. Each row
//! is tried by the image's owner and by five other accounts: one whose share of the image is
//! Accepted, Pending, Rejected or Stopped, and one it was never shared with. Each gets exactly
//! the access the rules give it, and what the others try changes nothing of the owner's.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use image_console::domain::image::ImageStatus;
use image_console::domain::list_query::{ListQuery, Ownership};
use image_console::domain::share::ShareDecision;
use image_console::server::auth::SESSION_COOKIE;
use image_console::server_fns::api_tokens::{CreateApiToken, ListApiTokens, RevokeApiToken};
use image_console::server_fns::auth::{CurrentUser, SignIn, SignOut, SignUp};
use image_console::server_fns::certificates::{
    AddCertificate, DeleteCertificate, ListCertificates,
};
use image_console::server_fns::images::{
    CreateDownloadLink, CreateImage, DeleteImage, DeleteImages, GetAccountUsage,
    GetConsoleSettings, GetImage, GetImageHistory, GetImageUpload, ListImages, PutImageTag,
    RemoveImageTag, ReplicateImage, RevokeDownloadLinks, SetDeprecation, SetImageProtected,
    UpdateImage,
};
use image_console::server_fns::keys::{ChangeKey, CreateKey, ListKeys};
use image_console::server_fns::lifecycle::{
    CancelImport, DestroyImages, GetAccountSettings, GetRecycleBin, RestoreImages,
    SetImageActivation, SetRetention,
};
use image_console::server_fns::shares::{
    ApproveShares, CountShareRequests, CreateSharedImage, FindSharedImage, GetAccountHistory,
    GetImageSharing, ListShareRequests, RejectShares, ShareImage, StopSharing,
};
use image_console::service::Actor;
use leptos::server_fn::ServerFn;
use serde::Serialize;
use serde_json::Value;

use crate::support::{Backend, Seed, TestApp, seed_image};
use crate::support::{Client, PASSWORD, text};

/// Who asks, by their account's relation to the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Owner,
    Accepted,
    Pending,
    Rejected,
    Stopped,
    Outsider,
}
use Role::*;

/// The order roles try each row: the owner last, as its actions (Delete) change the world.
const ORDER: [Role; 6] = [Outsider, Stopped, Rejected, Pending, Accepted, Owner];

impl Role {
    fn account(self) -> &'static str {
        match self {
            Owner => "alice",
            Accepted => "bob",
            Pending => "carol",
            Rejected => "dave",
            Stopped => "erin",
            Outsider => "mallory",
        }
    }
}

/// What a role got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// It saw or did what it asked about the image.
    Allowed,
    /// Nothing, exactly as if the image did not exist (404, or absent from a list).
    Hidden,
    /// Refused as another account's image it may only view (403).
    Forbidden,
    /// Allowed, acting on its own account only (nothing about the image).
    Own,
    /// Refused by a rule of the image's state, not by who asked (409).
    Refused,
}
use Seen::*;

/// Expected results in the order Owner, Accepted, Pending, Rejected, Stopped, Outsider.
type Expect = [Seen; 6];

fn expected(expect: &Expect, role: Role) -> Seen {
    expect[role as usize]
}

const OWNER_AND_ACCEPTED: Expect = [Allowed, Allowed, Hidden, Hidden, Hidden, Hidden];
const OWNER_ONLY: Expect = [Allowed, Forbidden, Hidden, Hidden, Hidden, Hidden];
const OWN_ACCOUNT: Expect = [Own, Own, Own, Own, Own, Own];
const RECIPIENT_ANSWERS: Expect = [Hidden, Allowed, Allowed, Allowed, Hidden, Hidden];

/// The start of the name of the image every row is about; each row's image has its own.
const SECRET: &str = "matrix-secret-image";

struct World {
    client: Client,
    services: image_console::service::Services,
    cookies: HashMap<Role, String>,
    /// Each role's API token, for the image API's routes.
    tokens: HashMap<Role, String>,
    /// The shared image, its name, and its Modification time when the row starts.
    image: String,
    secret: String,
    updated_at_ms: i64,
    /// An Uploading image of the owner with an upload started, and that upload's id.
    uploading: String,
    upload_id: String,
    /// An Uploading image of the owner whose upload has not been created.
    waiting: String,
    /// A download link the Stopped account was given while its share was Accepted.
    stale_link: String,
    /// The owner's own link.
    owner_link: String,
    /// The owner, for set-up a row needs (its image in the Recycle Bin, deactivated).
    owner: Actor,
}

type Run = for<'a> fn(&'a World, Role) -> Pin<Box<dyn Future<Output = Seen> + Send + 'a>>;

struct Row {
    name: &'static str,
    expect: Expect,
    run: Run,
}

/// A row for a server function.
macro_rules! server_fn_row {
    ($fn_type:ty, $expect:expr, |$w:ident, $r:ident| $body:block) => {
        Row {
            name: <$fn_type as ServerFn>::PATH,
            expect: $expect,
            run: |$w: &World, $r: Role| Box::pin(async move $body),
        }
    };
}

/// A row for a plain route or a page.
macro_rules! route_row {
    ($path:expr, $expect:expr, |$w:ident, $r:ident| $body:block) => {
        Row {
            name: $path,
            expect: $expect,
            run: |$w: &World, $r: Role| Box::pin(async move $body),
        }
    };
}

impl World {
    fn cookie(&self, role: Role) -> &str {
        &self.cookies[&role]
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        role: Role,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Response<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, self.cookie(role))
            .header("sec-fetch-site", "same-origin");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.client.send(request.body(body).unwrap()).await
    }

    /// Calls a server function as a same-origin browser does, with the role's session.
    async fn server_fn<T: ServerFn + Serialize>(
        &self,
        args: &T,
        role: Role,
    ) -> (StatusCode, String) {
        let body = serde_qs::to_string(args).unwrap();
        let response = self
            .send(
                Method::POST,
                T::PATH,
                role,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("accept", "application/json"),
                ],
                Body::from(body),
            )
            .await;
        let status = response.status();
        (status, text(response).await)
    }

    /// Calls the image API with the role's API token (and no session).
    async fn api(
        &self,
        method: Method,
        path: &str,
        role: Role,
        content_type: Option<&str>,
        body: Body,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", &self.tokens[&role]);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = self.client.send(request.body(body).unwrap()).await;
        let status = response.status();
        (status, text(response).await)
    }

    async fn page(&self, path: &str, role: Role) -> (StatusCode, String) {
        let response = self.send(Method::GET, path, role, &[], Body::empty()).await;
        let status = response.status();
        (status, text(response).await)
    }
}

/// Reads an answer about the image: a 2xx is `allowed`'s verdict on the body; a refusal by
/// its status. A hidden image never shows up in the answer, nor does the image in an answer
/// about the caller's own account only.
fn classify(
    world: &World,
    (status, body): (StatusCode, String),
    allowed: impl FnOnce(&str) -> Seen,
) -> Seen {
    let seen = match status {
        s if s.is_success() || s.is_redirection() => allowed(&body),
        StatusCode::NOT_FOUND => Hidden,
        StatusCode::FORBIDDEN => Forbidden,
        StatusCode::CONFLICT => Refused,
        other => panic!("unexpected status {other}: {body}"),
    };
    if matches!(seen, Hidden | Own) {
        assert!(
            !body.contains(&world.secret),
            "the image showed in an answer that must not name it ({seen:?}): {body}"
        );
    }
    seen
}

/// An identity look-up: refused for everyone alike, naming no image.
async fn no_identity(w: &World, r: Role, path: &str) -> Seen {
    let (status, body) = w.api(Method::GET, path, r, None, Body::empty()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    assert!(!body.contains(&w.image));
    Own
}

/// A batch answer about the row's image: done, refused as another account's, or unknown.
fn batch_seen(body: &str, done: &str) -> Seen {
    let result: Value = serde_json::from_str(body).unwrap();
    let reason = result["skipped"][0]["reason"].as_str().unwrap_or_default();
    if result[done].as_array().unwrap().len() == 1 {
        Allowed
    } else if reason.contains("only account alice can change, share or delete it") {
        Forbidden
    } else {
        assert_eq!(reason, "No image with that ID exists in this account.");
        Hidden
    }
}

fn allowed(_: &str) -> Seen {
    Allowed
}

fn own(_: &str) -> Seen {
    Own
}

/// Allowed when the answer names the image, Hidden when it does not.
fn mentions(id: &str) -> impl FnOnce(&str) -> Seen + '_ {
    move |body| if body.contains(id) { Allowed } else { Hidden }
}

/// A page: shown with the image, refused as view-only, or answered as if the image did not
/// exist. Read from the content: a streamed page's status is sent before its data arrives.
fn page_seen(world: &World, (status, body): (StatusCode, String)) -> Seen {
    assert!(
        matches!(
            status,
            StatusCode::OK | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        ),
        "unexpected status {status}: {body}"
    );
    if body.contains(&world.secret) {
        assert_eq!(status, StatusCode::OK);
        Allowed
    } else if body.contains("only account alice can change") {
        Forbidden
    } else {
        Hidden
    }
}

fn rows() -> Vec<Row> {
    vec![
        // ---- Server functions: the image's data.
        server_fn_row!(ListImages, OWNER_AND_ACCEPTED, |w, r| {
            classify(
                w,
                w.server_fn(
                    &ListImages {
                        query: String::new(),
                    },
                    r,
                )
                .await,
                mentions(&w.image),
            )
        }),
        server_fn_row!(GetImage, OWNER_AND_ACCEPTED, |w, r| {
            classify(
                w,
                w.server_fn(
                    &GetImage {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await,
                |body| {
                    if body.contains(&w.secret) {
                        Allowed
                    } else {
                        Hidden
                    }
                },
            )
        }),
        server_fn_row!(GetImageHistory, OWNER_AND_ACCEPTED, |w, r| {
            classify(
                w,
                w.server_fn(
                    &GetImageHistory {
                        id: w.image.clone(),
                        page: 1,
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(GetAccountUsage, OWN_ACCOUNT, |w, r| {
            // Usage counts the account's own images, never those shared with it.
            let (status, body) = w.server_fn(&GetAccountUsage {}, r).await;
            let mine = ListQuery {
                owner: Ownership::Mine,
                ..ListQuery::default()
            };
            let own_images = w
                .services
                .store()
                .count_images_exactly(r.account(), &mine, 0)
                .await
                .unwrap();
            let binned = w
                .services
                .store()
                .list_recycle_bin(r.account())
                .await
                .unwrap();
            classify(w, (status, body), |body| {
                // The Recycle Bin's images count too, and are said apart.
                let usage: Value = serde_json::from_str(body).unwrap();
                let in_bin = usage["recycle_bin_images"].as_u64().unwrap();
                assert_eq!(in_bin, binned.len() as u64);
                assert_eq!(usage["image_count"].as_u64().unwrap(), own_images + in_bin);
                Own
            })
        }),
        server_fn_row!(
            GetImageUpload,
            [Allowed, Hidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                classify(
                    w,
                    w.server_fn(
                        &GetImageUpload {
                            id: w.uploading.clone(),
                        },
                        r,
                    )
                    .await,
                    |body| {
                        if body == "null" { Hidden } else { Allowed }
                    },
                )
            }
        ),
        server_fn_row!(CreateDownloadLink, OWNER_AND_ACCEPTED, |w, r| {
            classify(
                w,
                w.server_fn(
                    &CreateDownloadLink {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        // ---- Server functions: changes only the owner may make.
        server_fn_row!(UpdateImage, OWNER_ONLY, |w, r| {
            let edit = UpdateImage {
                id: w.image.clone(),
                updated_at_ms: w.updated_at(),
                name: "renamed".into(),
                description: String::new(),
                os_family: "linux".into(),
                os_platform: "ubuntu".into(),
                os_version: None,
                min_disk: "1".into(),
                min_ram: "1".into(),
                architecture: "x86_64".into(),
                boot_mode: "bios".into(),
                cloud_init: None,
                qemu_guest_agent: None,
                protected: None,
                visibility: Some("shared".into()),
            };
            classify(w, w.server_fn(&edit, r).await, allowed)
        }),
        server_fn_row!(SetDeprecation, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &SetDeprecation {
                        id: w.image.clone(),
                        // Ahead, so the image stays in the lists the other rows read.
                        deprecate_on: "2030-01-01T00:00".into(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(SetImageProtected, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &SetImageProtected {
                        id: w.image.clone(),
                        protected: true,
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(PutImageTag, OWNER_ONLY, |w, r| {
            let tag = PutImageTag {
                id: w.image.clone(),
                original_key: None,
                tag_key: "mine".into(),
                tag_value: "x".into(),
            };
            classify(w, w.server_fn(&tag, r).await, allowed)
        }),
        server_fn_row!(RemoveImageTag, OWNER_ONLY, |w, r| {
            let tag = RemoveImageTag {
                id: w.image.clone(),
                tag_key: "env".into(),
            };
            classify(w, w.server_fn(&tag, r).await, allowed)
        }),
        server_fn_row!(RevokeDownloadLinks, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &RevokeDownloadLinks {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(DeleteImage, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &DeleteImage {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(DeleteImages, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &DeleteImages {
                        ids: vec![w.image.clone()],
                    },
                    r,
                )
                .await,
                |body| batch_seen(body, "deleted"),
            )
        }),
        server_fn_row!(RestoreImages, OWNER_ONLY, |w, r| {
            // The owner's image goes to the Recycle Bin first, and comes back as it was.
            if r == Owner {
                w.services.delete_image(&w.owner, &w.image).await.unwrap();
            }
            let restore = RestoreImages {
                ids: vec![w.image.clone()],
            };
            classify(w, w.server_fn(&restore, r).await, |body| {
                batch_seen(body, "done")
            })
        }),
        server_fn_row!(DestroyImages, OWNER_ONLY, |w, r| {
            if r == Owner {
                w.services.delete_image(&w.owner, &w.image).await.unwrap();
            }
            let destroy = DestroyImages {
                ids: vec![w.image.clone()],
            };
            classify(w, w.server_fn(&destroy, r).await, |body| {
                batch_seen(body, "done")
            })
        }),
        server_fn_row!(SetImageActivation, OWNER_ONLY, |w, r| {
            let deactivate = SetImageActivation {
                id: w.image.clone(),
                deactivate: true,
            };
            let seen = classify(w, w.server_fn(&deactivate, r).await, allowed);
            if seen == Allowed {
                let reactivate = SetImageActivation {
                    id: w.image.clone(),
                    deactivate: false,
                };
                assert_eq!(
                    classify(w, w.server_fn(&reactivate, r).await, allowed),
                    Allowed
                );
            }
            seen
        }),
        server_fn_row!(
            CancelImport,
            [Refused, Forbidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                // The image is Active: nothing to cancel, which only its owner is told.
                classify(
                    w,
                    w.server_fn(
                        &CancelImport {
                            id: w.image.clone(),
                        },
                        r,
                    )
                    .await,
                    allowed,
                )
            }
        ),
        server_fn_row!(ReplicateImage, OWNER_ONLY, |w, r| {
            let args = ReplicateImage {
                id: w.image.clone(),
                name: format!("replica-{}", r.account()),
                encryption: Some("on".into()),
                encryption_key: None,
            };
            classify(w, w.server_fn(&args, r).await, allowed)
        }),
        server_fn_row!(GetImageSharing, OWNER_ONLY, |w, r| {
            classify(
                w,
                w.server_fn(
                    &GetImageSharing {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(ShareImage, OWNER_ONLY, |w, r| {
            let share = ShareImage {
                id: w.image.clone(),
                account_id: "zed".into(),
            };
            classify(w, w.server_fn(&share, r).await, allowed)
        }),
        server_fn_row!(StopSharing, OWNER_ONLY, |w, r| {
            // The owner stops the Pending share; the others try to stop their own.
            let account = if r == Owner {
                Pending.account()
            } else {
                r.account()
            };
            let stop = StopSharing {
                id: w.image.clone(),
                account_id: account.into(),
            };
            classify(w, w.server_fn(&stop, r).await, allowed)
        }),
        server_fn_row!(
            CreateSharedImage,
            [Refused, Forbidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                // The shared image is Shared: its owner is refused by the rule, not by role.
                let copy = CreateSharedImage {
                    id: w.image.clone(),
                    name: "copy".into(),
                };
                classify(w, w.server_fn(&copy, r).await, allowed)
            }
        ),
        // ---- Server functions: the answers of the accounts the image is shared with.
        server_fn_row!(
            ListShareRequests,
            [Hidden, Hidden, Allowed, Hidden, Hidden, Hidden],
            |w, r| {
                classify(
                    w,
                    w.server_fn(&ListShareRequests { page: 1 }, r).await,
                    mentions(&w.image),
                )
            }
        ),
        server_fn_row!(
            CountShareRequests,
            [Hidden, Hidden, Allowed, Hidden, Hidden, Hidden],
            |w, r| {
                classify(w, w.server_fn(&CountShareRequests {}, r).await, |body| {
                    if body == "0" { Hidden } else { Allowed }
                })
            }
        ),
        server_fn_row!(FindSharedImage, RECIPIENT_ANSWERS, |w, r| {
            classify(
                w,
                w.server_fn(
                    &FindSharedImage {
                        image_id: w.image.clone(),
                    },
                    r,
                )
                .await,
                allowed,
            )
        }),
        server_fn_row!(ApproveShares, RECIPIENT_ANSWERS, |w, r| {
            classify(
                w,
                w.server_fn(
                    &ApproveShares {
                        ids: vec![w.image.clone()],
                    },
                    r,
                )
                .await,
                decided,
            )
        }),
        server_fn_row!(RejectShares, RECIPIENT_ANSWERS, |w, r| {
            classify(
                w,
                w.server_fn(
                    &RejectShares {
                        ids: vec![w.image.clone()],
                    },
                    r,
                )
                .await,
                decided,
            )
        }),
        server_fn_row!(
            GetAccountHistory,
            [Allowed, Allowed, Allowed, Allowed, Allowed, Hidden],
            |w, r| {
                // Each account's own history: the share events it took part in.
                classify(
                    w,
                    w.server_fn(&GetAccountHistory { page: 1 }, r).await,
                    mentions(&w.image),
                )
            }
        ),
        // ---- Server functions about the caller only.
        server_fn_row!(CreateImage, OWN_ACCOUNT, |w, r| {
            let create = CreateImage {
                name: format!("own-{}", r.account()),
                source: None,
                // A closed local port: the import fails at once, in the caller's account.
                source_url: Some("http://127.0.0.1:9/own.qcow2".into()),
                file_name: None,
                file_size: None,
                disk_format: None,
                os_family: "linux".into(),
                os_platform: "ubuntu".into(),
                os_version: None,
                min_disk: "1".into(),
                min_ram: "1".into(),
                visibility: "private".into(),
                protected: None,
                description: String::new(),
                architecture: None,
                boot_mode: None,
                cloud_init: None,
                qemu_guest_agent: None,
                tags: None,
                checksum: None,
                encryption: None,
                encryption_key: None,
                convert_to: None,
                img_signature: None,
                img_signature_hash_method: None,
                img_signature_key_type: None,
                img_signature_certificate_uuid: None,
            };
            classify(w, w.server_fn(&create, r).await, own)
        }),
        server_fn_row!(GetConsoleSettings, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&GetConsoleSettings {}, r).await, own)
        }),
        server_fn_row!(CurrentUser, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&CurrentUser {}, r).await, |body| {
                let user: Value = serde_json::from_str(body).unwrap();
                assert_eq!(user["account_id"], r.account());
                Own
            })
        }),
        server_fn_row!(SignIn, OWN_ACCOUNT, |w, r| {
            let sign_in = SignIn {
                user_name: format!("admin@{}", r.account()),
                password: PASSWORD.into(),
                next: None,
            };
            classify(w, w.server_fn(&sign_in, r).await, own)
        }),
        server_fn_row!(SignUp, OWN_ACCOUNT, |w, r| {
            let account = format!("new-{}-{}", r.account(), w.image[..8].to_owned());
            let sign_up = SignUp {
                account_id: account.clone(),
                user_name: format!("admin@{account}"),
                password: PASSWORD.into(),
                password_confirm: PASSWORD.into(),
            };
            classify(w, w.server_fn(&sign_up, r).await, own)
        }),
        server_fn_row!(SignOut, OWN_ACCOUNT, |w, r| {
            // A second session of the role, so its main one lives on for the other rows.
            let (_, token) = w
                .client_services()
                .sign_in(
                    crate::support::CLIENT,
                    &format!("admin@{}", r.account()),
                    PASSWORD,
                )
                .await
                .unwrap();
            let cookie = format!("{SESSION_COOKIE}={}", token.expose());
            let response = w
                .client
                .send(
                    Request::post(SignOut::PATH)
                        .header(header::COOKIE, &cookie)
                        .header("sec-fetch-site", "same-origin")
                        .header("accept", "application/json")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert!(response.status().is_success() || response.status().is_redirection());
            assert!(
                w.client_services()
                    .authenticate(&token)
                    .await
                    .unwrap()
                    .is_none()
            );
            Own
        }),
        // ---- Plain HTTP routes.
        route_row!("/healthz", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/healthz", r).await, own)
        }),
        route_row!("/exports/images.csv", OWNER_AND_ACCEPTED, |w, r| {
            classify(
                w,
                w.page("/exports/images.csv", r).await,
                mentions(&w.image),
            )
        }),
        route_row!("/downloads/{id}/{file}", OWNER_AND_ACCEPTED, |w, r| {
            // The role's own link if it can get one; otherwise the link it had (Stopped) or
            // a forged one naming its account.
            let (status, body) = w
                .server_fn(
                    &CreateDownloadLink {
                        id: w.image.clone(),
                    },
                    r,
                )
                .await;
            let path = if status.is_success() {
                let link: Value = serde_json::from_str(&body).unwrap();
                link["path"].as_str().unwrap().to_owned()
            } else if r == Stopped {
                w.stale_link.clone()
            } else {
                w.owner_link
                    .replace("&sig=", &format!("&acct={}&since=1&sig=", r.account()))
            };
            let response = w.send(Method::GET, &path, r, &[], Body::empty()).await;
            match response.status() {
                StatusCode::OK => Allowed,
                StatusCode::FORBIDDEN => Hidden,
                other => panic!("download answered {other}"),
            }
        }),
        route_row!("/uploads", OWN_ACCOUNT, |w, r| {
            let response = w
                .send(Method::OPTIONS, "/uploads", r, &[], Body::empty())
                .await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            Own
        }),
        route_row!(
            "/uploads/{id}",
            [Allowed, Hidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                let path = format!("/uploads/{}", w.upload_id);
                let tus = [("tus-resumable", "1.0.0")];
                let head = w.send(Method::HEAD, &path, r, &tus, Body::empty()).await;
                if r == Owner {
                    assert_eq!(head.status(), StatusCode::OK);
                    return Allowed;
                }
                assert_eq!(head.status(), StatusCode::NOT_FOUND);
                // Neither can they write to it nor end it.
                let patch = w
                    .send(
                        Method::PATCH,
                        &path,
                        r,
                        &[
                            ("tus-resumable", "1.0.0"),
                            ("upload-offset", "0"),
                            ("content-type", "application/offset+octet-stream"),
                        ],
                        Body::from(vec![0u8; 16]),
                    )
                    .await;
                assert_eq!(patch.status(), StatusCode::NOT_FOUND);
                let delete = w.send(Method::DELETE, &path, r, &tus, Body::empty()).await;
                assert_eq!(delete.status(), StatusCode::NOT_FOUND);
                Hidden
            }
        ),
        route_row!(
            "/images/{id}/uploads",
            [Allowed, Hidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                let mut seen = Vec::new();
                for image in [&w.waiting, &w.image] {
                    let response = w
                        .send(
                            Method::POST,
                            &format!("/images/{image}/uploads"),
                            r,
                            &[("tus-resumable", "1.0.0"), ("upload-length", "4096")],
                            Body::empty(),
                        )
                        .await;
                    seen.push(response.status());
                }
                match r {
                    // Its Uploading image takes an upload; its Active one is not waiting.
                    Owner => {
                        assert_eq!(seen, [StatusCode::CREATED, StatusCode::CONFLICT]);
                        Allowed
                    }
                    _ => {
                        assert_eq!(seen, [StatusCode::NOT_FOUND, StatusCode::NOT_FOUND]);
                        Hidden
                    }
                }
            }
        ),
        // ---- API tokens: each user's own.
        server_fn_row!(GetRecycleBin, OWN_ACCOUNT, |w, r| {
            // Each account's own bin; the owner's image is not in anyone's.
            classify(w, w.server_fn(&GetRecycleBin {}, r).await, |body| {
                assert!(!body.contains(&w.image), "{body}");
                Own
            })
        }),
        server_fn_row!(GetAccountSettings, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&GetAccountSettings {}, r).await, own)
        }),
        server_fn_row!(SetRetention, OWN_ACCOUNT, |w, r| {
            let set = SetRetention {
                retention_days: "7".into(),
            };
            classify(w, w.server_fn(&set, r).await, own)
        }),
        server_fn_row!(ListApiTokens, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&ListApiTokens {}, r).await, own)
        }),
        server_fn_row!(CreateApiToken, OWN_ACCOUNT, |w, r| {
            let args = CreateApiToken {
                name: format!("matrix {}", r.account()),
                lifetime: "30".into(),
            };
            classify(w, w.server_fn(&args, r).await, own)
        }),
        server_fn_row!(RevokeApiToken, OWN_ACCOUNT, |w, r| {
            // Another user's token id is answered as a missing one.
            let (status, _) = w
                .server_fn(
                    &RevokeApiToken {
                        id: "0000000000000000".into(),
                    },
                    r,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            Own
        }),
        server_fn_row!(ListCertificates, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&ListCertificates {}, r).await, own)
        }),
        server_fn_row!(AddCertificate, OWN_ACCOUNT, |w, r| {
            let signer = crate::signatures::Signer::new(
                image_console::domain::signature::KeyType::EccSecp384r1,
                &format!("/CN=matrix-{}", r.account()),
            );
            let args = AddCertificate {
                certificate_pem: signer.certificate_pem(),
            };
            classify(w, w.server_fn(&args, r).await, own)
        }),
        server_fn_row!(DeleteCertificate, OWN_ACCOUNT, |w, r| {
            // The owner's certificate: the owner deletes it, anyone else is told there is none.
            let signer = crate::signatures::Signer::new(
                image_console::domain::signature::KeyType::EccSecp384r1,
                &format!("/CN=delete-{}", r.account()),
            );
            let id = w
                .services
                .add_certificate(&w.owner, &signer.certificate_pem())
                .await
                .unwrap();
            let (status, body) = w.server_fn(&DeleteCertificate { id }, r).await;
            let expected = if r == Owner {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{body}");
            Own
        }),
        server_fn_row!(ListKeys, OWN_ACCOUNT, |w, r| {
            classify(w, w.server_fn(&ListKeys {}, r).await, own)
        }),
        server_fn_row!(CreateKey, OWN_ACCOUNT, |w, r| {
            let args = CreateKey {
                name: format!("matrix-{}", r.account()),
                description: String::new(),
                make_default: None,
            };
            classify(w, w.server_fn(&args, r).await, own)
        }),
        server_fn_row!(ChangeKey, OWN_ACCOUNT, |w, r| {
            // The owner's key: the owner changes it, anyone else is told there is no such key.
            let key = w
                .services
                .create_key(&w.owner, &format!("change-{}", r.account()), "", false)
                .await
                .unwrap();
            let args = ChangeKey {
                id: key,
                action: "rotate".into(),
                days: None,
            };
            let (status, body) = w.server_fn(&args, r).await;
            let expected = if r == Owner {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{body}");
            Own
        }),
        // ---- The image API, with each role's API token.
        route_row!("/", OWN_ACCOUNT, |w, r| {
            let response = w
                .send(
                    Method::GET,
                    "/",
                    r,
                    &[("accept", "application/json")],
                    Body::empty(),
                )
                .await;
            assert_eq!(response.status(), StatusCode::MULTIPLE_CHOICES);
            Own
        }),
        route_row!("/versions", OWN_ACCOUNT, |w, r| {
            classify(
                w,
                w.api(Method::GET, "/versions", r, None, Body::empty())
                    .await,
                own,
            )
        }),
        route_row!("/v2/info/import", OWN_ACCOUNT, |w, r| {
            classify(
                w,
                w.api(Method::GET, "/v2/info/import", r, None, Body::empty())
                    .await,
                own,
            )
        }),
        route_row!("/v2/info/stores", OWN_ACCOUNT, |w, r| {
            classify(
                w,
                w.api(Method::GET, "/v2/info/stores", r, None, Body::empty())
                    .await,
                own,
            )
        }),
        route_row!("/v2/schemas/{name}", OWN_ACCOUNT, |w, r| {
            classify(
                w,
                w.api(Method::GET, "/v2/schemas/image", r, None, Body::empty())
                    .await,
                own,
            )
        }),
        route_row!("/v2/images", OWNER_AND_ACCEPTED, |w, r| {
            // Anyone creates images in its own account.
            let body = format!(
                r#"{{"name": "api {}", "disk_format": "raw", "os_distro": "ubuntu"}}"#,
                r.account()
            );
            let (status, created) = w
                .api(
                    Method::POST,
                    "/v2/images",
                    r,
                    Some("application/json"),
                    Body::from(body),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            assert!(
                created.contains(&format!("\"owner\":\"{}\"", r.account())),
                "{created}"
            );
            // The list shows the image to whoever may see it.
            classify(
                w,
                w.api(Method::GET, "/v2/images", r, None, Body::empty())
                    .await,
                mentions(&w.image),
            )
        }),
        route_row!("/v2/images/{id}", OWNER_ONLY, |w, r| {
            let path = format!("/v2/images/{}", w.image);
            let shown = classify(
                w,
                w.api(Method::GET, &path, r, None, Body::empty()).await,
                allowed,
            );
            // Glance shows an image to its members whatever their answer, as Get Image
            // Share does.
            let members = [Allowed, Allowed, Allowed, Allowed, Hidden, Hidden];
            assert_eq!(shown, expected(&members, r), "GET {path}");
            let patch = r#"[{"op": "replace", "path": "/min_disk", "value": 30}]"#;
            let patched = classify(
                w,
                w.api(
                    Method::PATCH,
                    &path,
                    r,
                    Some("application/openstack-images-v2.1-json-patch"),
                    Body::from(patch),
                )
                .await,
                allowed,
            );
            let deleted = classify(
                w,
                w.api(Method::DELETE, &path, r, None, Body::empty()).await,
                allowed,
            );
            assert_eq!(patched, deleted, "PATCH and DELETE {path}");
            deleted
        }),
        route_row!("/v2/images/{id}/file", OWNER_AND_ACCEPTED, |w, r| {
            let path = format!("/v2/images/{}/file", w.image);
            let put = w
                .api(
                    Method::PUT,
                    &path,
                    r,
                    Some("application/octet-stream"),
                    Body::from(vec![1u8; 512]),
                )
                .await;
            // The owner's image has its data; a recipient may not send any; the rest are
            // answered as if it did not exist.
            let expected_put = match r {
                Owner => StatusCode::CONFLICT,
                Accepted => StatusCode::FORBIDDEN,
                _ => StatusCode::NOT_FOUND,
            };
            assert_eq!(put.0, expected_put, "PUT {path}: {}", put.1);
            classify(
                w,
                w.api(Method::GET, &path, r, None, Body::empty()).await,
                |body| {
                    assert_eq!(body.len(), 4096);
                    Allowed
                },
            )
        }),
        route_row!("/v2/images/{id}/actions/{action}", OWNER_ONLY, |w, r| {
            let path = |action: &str| format!("/v2/images/{}/actions/{action}", w.image);
            let deactivated = classify(
                w,
                w.api(Method::POST, &path("deactivate"), r, None, Body::empty())
                    .await,
                allowed,
            );
            let reactivated = classify(
                w,
                w.api(Method::POST, &path("reactivate"), r, None, Body::empty())
                    .await,
                allowed,
            );
            assert_eq!(deactivated, reactivated, "deactivate and reactivate");
            let replicated = classify(
                w,
                w.api(
                    Method::POST,
                    &path("replicate"),
                    r,
                    None,
                    Body::from(r#"{"os_encrypt_key_id": "default"}"#),
                )
                .await,
                allowed,
            );
            assert_eq!(deactivated, replicated, "deactivate and replicate");
            deactivated
        }),
        route_row!("/v2/images/{id}/ancestry", OWNER_AND_ACCEPTED, |w, r| {
            // Unlike the image itself, its ancestry is not shown to a pending or rejected member.
            let path = format!("/v2/images/{}/ancestry", w.image);
            classify(
                w,
                w.api(Method::GET, &path, r, None, Body::empty()).await,
                allowed,
            )
        }),
        route_row!("/v2/images/{id}/references", OWNER_AND_ACCEPTED, |w, r| {
            let path = format!("/v2/images/{}/references", w.image);
            classify(
                w,
                w.api(Method::GET, &path, r, None, Body::empty()).await,
                allowed,
            )
        }),
        route_row!(
            "/v2/images/{id}/references/{kind}/{reference}",
            OWNER_AND_ACCEPTED,
            |w, r| {
                // An account the image is shared with may record its own use of it.
                let path = format!(
                    "/v2/images/{}/references/virtual-machine/vm-{}",
                    w.image,
                    r.account()
                );
                let added = classify(
                    w,
                    w.api(Method::PUT, &path, r, None, Body::empty()).await,
                    allowed,
                );
                let removed = classify(
                    w,
                    w.api(Method::DELETE, &path, r, None, Body::empty()).await,
                    allowed,
                );
                assert_eq!(added, removed, "PUT and DELETE {path}");
                added
            }
        ),
        route_row!("/v2/images/{id}/tags/{tag}", OWNER_ONLY, |w, r| {
            let path = format!("/v2/images/{}/tags/matrix", w.image);
            let added = classify(
                w,
                w.api(Method::PUT, &path, r, None, Body::empty()).await,
                allowed,
            );
            let removed = classify(
                w,
                w.api(Method::DELETE, &path, r, None, Body::empty()).await,
                allowed,
            );
            assert_eq!(added, removed, "PUT and DELETE {path}");
            added
        }),
        route_row!(
            "/v2/images/{id}/stage",
            [Refused, Forbidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                // The image has its data: the owner is refused by its state.
                let path = format!("/v2/images/{}/stage", w.image);
                classify(
                    w,
                    w.api(
                        Method::PUT,
                        &path,
                        r,
                        Some("application/octet-stream"),
                        Body::from(vec![1u8; 512]),
                    )
                    .await,
                    allowed,
                )
            }
        ),
        route_row!(
            "/v2/images/{id}/import",
            [Refused, Forbidden, Hidden, Hidden, Hidden, Hidden],
            |w, r| {
                let path = format!("/v2/images/{}/import", w.image);
                let body = r#"{"method": {"name": "glance-direct"}}"#;
                classify(
                    w,
                    w.api(
                        Method::POST,
                        &path,
                        r,
                        Some("application/json"),
                        Body::from(body),
                    )
                    .await,
                    allowed,
                )
            }
        ),
        route_row!(
            "/v2/images/{id}/members",
            [Allowed, Allowed, Allowed, Allowed, Hidden, Hidden],
            |w, r| {
                let path = format!("/v2/images/{}/members", w.image);
                let added = w
                    .api(
                        Method::POST,
                        &path,
                        r,
                        Some("application/json"),
                        Body::from(r#"{"member": "frank"}"#),
                    )
                    .await;
                let expected_add = match r {
                    Owner => StatusCode::OK,
                    Accepted => StatusCode::FORBIDDEN,
                    _ => StatusCode::NOT_FOUND,
                };
                assert_eq!(added.0, expected_add, "POST {path}: {}", added.1);
                // The owner sees every member; a member sees its own membership only.
                classify(
                    w,
                    w.api(Method::GET, &path, r, None, Body::empty()).await,
                    |body| {
                        let members = body.matches("\"member_id\"").count();
                        match r {
                            Owner => assert!(members >= 3, "{body}"),
                            _ => {
                                assert_eq!(members, 1, "{body}");
                                assert!(body.contains(r.account()), "{body}");
                            }
                        }
                        Allowed
                    },
                )
            }
        ),
        route_row!("/v2/images/{id}/members/{member}", OWNER_ONLY, |w, r| {
            let bob = format!("/v2/images/{}/members/{}", w.image, Accepted.account());
            let shown = w.api(Method::GET, &bob, r, None, Body::empty()).await;
            let expected_show = match r {
                Owner | Accepted => StatusCode::OK,
                _ => StatusCode::NOT_FOUND,
            };
            assert_eq!(shown.0, expected_show, "GET {bob}: {}", shown.1);
            if r != Accepted {
                // Only the member answers for itself.
                let answered = w
                    .api(
                        Method::PUT,
                        &bob,
                        r,
                        Some("application/json"),
                        Body::from(r#"{"status": "rejected"}"#),
                    )
                    .await;
                let expected_answer = if r == Owner {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(answered.0, expected_answer, "PUT {bob}: {}", answered.1);
            }
            let carol = format!("/v2/images/{}/members/{}", w.image, Pending.account());
            classify(
                w,
                w.api(Method::DELETE, &carol, r, None, Body::empty()).await,
                allowed,
            )
        }),
        route_row!("/v2/tenants", OWN_ACCOUNT, |w, r| {
            no_identity(w, r, "/v2/tenants").await
        }),
        route_row!("/v2/tenants/{name}", OWN_ACCOUNT, |w, r| {
            no_identity(w, r, "/v2/tenants/globex").await
        }),
        route_row!("/v3/projects", OWN_ACCOUNT, |w, r| {
            no_identity(w, r, "/v3/projects").await
        }),
        route_row!("/v3/projects/{name}", OWN_ACCOUNT, |w, r| {
            no_identity(w, r, "/v3/projects/globex").await
        }),
        route_row!("/images/api-access", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/api-access", r).await, own)
        }),
        route_row!("/images/recycle-bin", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/recycle-bin", r).await, own)
        }),
        route_row!("/images/guide", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/guide", r).await, own)
        }),
        route_row!("/images/account-settings", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/account-settings", r).await, own)
        }),
        route_row!("/images/certificates", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/certificates", r).await, own)
        }),
        route_row!("/images/keys", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/keys", r).await, own)
        }),
        // ---- Pages, rendered on the server with the role's session.
        route_row!("/signin", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/signin", r).await, own)
        }),
        route_row!("/signup", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/signup", r).await, own)
        }),
        route_row!("/images", OWNER_AND_ACCEPTED, |w, r| {
            page_seen(w, w.page("/images", r).await)
        }),
        route_row!("/images/create", OWN_ACCOUNT, |w, r| {
            classify(w, w.page("/images/create", r).await, own)
        }),
        route_row!(
            "/images/share-requests",
            [Hidden, Hidden, Allowed, Hidden, Hidden, Hidden],
            |w, r| { page_seen(w, w.page("/images/share-requests", r).await) }
        ),
        route_row!("/images/get-share", RECIPIENT_ANSWERS, |w, r| {
            page_seen(
                w,
                w.page(&format!("/images/get-share?image_id={}", w.image), r)
                    .await,
            )
        }),
        route_row!(
            "/images/work-history",
            [Allowed, Allowed, Allowed, Allowed, Allowed, Hidden],
            |w, r| { page_seen(w, w.page("/images/work-history", r).await) }
        ),
        route_row!("/images/{id}/share", OWNER_ONLY, |w, r| {
            page_seen(w, w.page(&format!("/images/{}/share", w.image), r).await)
        }),
        route_row!("/images/{id}", OWNER_AND_ACCEPTED, |w, r| {
            page_seen(w, w.page(&format!("/images/{}", w.image), r).await)
        }),
    ]
}

/// Approve or Reject: decided when the image is among those done.
fn decided(body: &str) -> Seen {
    let result: Value = serde_json::from_str(body).unwrap();
    if result["done"].as_array().unwrap().is_empty() {
        assert_eq!(
            result["skipped"][0]["reason"],
            "No such image is shared with this account."
        );
        Hidden
    } else {
        Allowed
    }
}

impl World {
    fn client_services(&self) -> &image_console::service::Services {
        &self.services
    }

    /// The image's Modification time when the row started, for an Edit that would succeed.
    fn updated_at(&self) -> i64 {
        self.updated_at_ms
    }
}

/// Everything the paths of the app answer to: server functions, plain routes and pages.
fn every_path() -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    paths.extend(
        image_console::server::http_route_paths()
            .into_iter()
            .map(str::to_owned),
    );
    paths.extend(
        leptos_axum::generate_route_list(image_console::app::App)
            .into_iter()
            .map(|route| route.path().to_owned()),
    );
    paths
}

async fn world(
    app: &TestApp,
    row: usize,
    cookies: &HashMap<Role, String>,
    tokens: &HashMap<Role, String>,
    actors: &HashMap<Role, Actor>,
) -> World {
    let services = &app.services;
    let owner = &actors[&Owner];
    let secret = format!("{SECRET}-{row}");
    let image = seed_image(
        services,
        owner,
        Seed {
            name: &secret,
            size_bytes: 4096,
            tags: &[("env", "prod")],
            ..Seed::default()
        },
    )
    .await;
    std::fs::write(app.blob_dir().join("images").join(&image), vec![7u8; 4096]).unwrap();
    for role in [Accepted, Pending, Rejected, Stopped] {
        services
            .share_image(owner, &image, role.account())
            .await
            .unwrap();
    }
    let one = std::slice::from_ref(&image);
    for role in [Accepted, Stopped] {
        services
            .decide_shares(&actors[&role], one, ShareDecision::Approve)
            .await
            .unwrap();
    }
    services
        .decide_shares(&actors[&Rejected], one, ShareDecision::Reject)
        .await
        .unwrap();
    let stale_link = services
        .create_download_link(&actors[&Stopped], &image)
        .await
        .unwrap()
        .path;
    services
        .stop_sharing(owner, &image, Stopped.account())
        .await
        .unwrap();
    let owner_link = services
        .create_download_link(owner, &image)
        .await
        .unwrap()
        .path;
    let uploading_seed = || Seed {
        status: ImageStatus::Uploading,
        size_bytes: 4096,
        ..Seed::default()
    };
    let uploading = seed_image(services, owner, uploading_seed()).await;
    let upload_id = services
        .create_upload(owner, &uploading, 4096, "")
        .await
        .unwrap()
        .id;
    let waiting = seed_image(services, owner, uploading_seed()).await;
    let updated_at_ms = services
        .get_image(owner, &image)
        .await
        .unwrap()
        .updated_at_ms;
    World {
        client: Client::new(app),
        services: services.clone(),
        secret,
        cookies: cookies.clone(),
        tokens: tokens.clone(),
        image,
        uploading,
        upload_id,
        waiting,
        stale_link,
        owner_link,
        updated_at_ms,
        owner: owner.clone(),
    }
}

async fn every_path_gives_each_account_exactly_its_access(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut cookies = HashMap::new();
    let mut tokens = HashMap::new();
    let mut actors = HashMap::new();
    for role in ORDER {
        let signed_up = app.sign_up(role.account()).await;
        cookies.insert(role, signed_up.cookie);
        let actor = signed_up.actor;
        let api_token = app
            .services
            .create_api_token(&actor, "matrix", "30")
            .await
            .unwrap();
        tokens.insert(role, api_token.secret);
        actors.insert(role, actor);
    }

    let rows = rows();
    let covered: BTreeSet<String> = rows.iter().map(|r| r.name.to_owned()).collect();
    let paths = every_path();
    let missing: Vec<&String> = paths.iter().filter(|p| !covered.contains(*p)).collect();
    assert!(
        missing.is_empty(),
        "no authorization row for {missing:?}: add one to tests/it/matrix.rs"
    );
    let stale: Vec<&String> = covered.iter().filter(|p| !paths.contains(*p)).collect();
    assert!(
        stale.is_empty(),
        "rows for paths that no longer exist: {stale:?}"
    );

    let mut failures = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        let world = world(&app, n, &cookies, &tokens, &actors).await;
        let before = app
            .services
            .get_image(&actors[&Owner], &world.image)
            .await
            .unwrap();
        for role in ORDER {
            if role == Owner {
                // What the others did left the owner's image as it was.
                let after = app
                    .services
                    .get_image(&actors[&Owner], &world.image)
                    .await
                    .unwrap();
                if after != before {
                    failures.push(format!(
                        "{}: the image changed: {before:?} → {after:?}",
                        row.name
                    ));
                }
                let sharing = app
                    .services
                    .image_sharing(&actors[&Owner], &world.image)
                    .await
                    .unwrap();
                let outsider = sharing
                    .shares
                    .iter()
                    .any(|s| s.account_id == Outsider.account());
                if outsider {
                    failures.push(format!("{}: the outsider got a share", row.name));
                }
            }
            let seen = (row.run)(&world, role).await;
            let want = expected(&row.expect, role);
            if seen != want {
                failures.push(format!(
                    "{} as {role:?}: expected {want:?}, got {seen:?}",
                    row.name
                ));
            }
        }
        // An account may have only 10 uploads in progress, and the next row starts afresh.
        let owner = &actors[&Owner];
        let _ = app.services.terminate_upload(owner, &world.upload_id).await;
        let _ = app.services.cancel_import(owner, &world.waiting).await;
        for id in [&world.uploading, &world.waiting, &world.image] {
            let _ = app.services.delete_image(owner, id).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

crate::on_both_databases!(every_path_gives_each_account_exactly_its_access);
