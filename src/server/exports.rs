//! `GET /exports/images.csv?…`: the Image List, with the same search and filters, as CSV.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{CookiePolicy, errors};
use crate::domain::list_query::ListQuery;
use crate::service::{ServiceError, Services};

pub async fn export_images_csv(
    State(services): State<Services>,
    State(policy): State<CookiePolicy>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let reference = errors::reference(&headers);
    let refuse = |e: ServiceError| errors::Answer::of_service(&e, &reference).into_response();
    let actor = match super::auth::actor_from_headers(&services, &policy, &headers).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return refuse(ServiceError::Unauthorized),
        Err(e) => return refuse(e),
    };
    let query = ListQuery::from_params(|name| params.get(name).cloned());
    match services.export_images_csv(&actor, &query).await {
        Ok(csv) => {
            let date = crate::domain::units::format_rfc3339(crate::service::now_ms());
            let file = format!(
                "images-{}-{}.csv",
                actor.account_id,
                &date[..10.min(date.len())]
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                csv,
            )
                .into_response()
        }
        Err(e) => refuse(e),
    }
}
