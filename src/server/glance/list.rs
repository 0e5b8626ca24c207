//! `GET /v2/images`: its query (filters, sort, marker and limit) parsed into the console's
//! `ApiListQuery`, which the store answers in SQL.

use super::document::{FieldRefusal, bad, os_type_value};
use super::wire::tag_from_api;
use crate::domain::api_list::{
    ApiField, ApiFilter, ApiListQuery, ApiSort, ApiSortKey, DEFAULT_LIMIT, MAX_LIMIT,
};
use crate::domain::deprecation::Inclusion;
use crate::domain::share::ShareStatus;
use crate::domain::validation::or_list;

/// Parses the list's query string pairs.
pub fn parse(pairs: &[(String, String)]) -> Result<ApiListQuery, FieldRefusal> {
    let mut query = ApiListQuery {
        limit: DEFAULT_LIMIT,
        sort: Vec::new(),
        ..ApiListQuery::default()
    };
    let mut sort_keys: Vec<String> = Vec::new();
    let mut sort_dirs: Vec<String> = Vec::new();
    let mut sort: Option<String> = None;
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                let limit: u64 = value
                    .parse()
                    .map_err(|_| bad("limit must be a whole number, 0 or more."))?;
                query.limit = u32::try_from(limit.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT);
            }
            "marker" => query.marker = Some(value.clone()),
            "sort_key" => sort_keys.extend(value.split(',').map(str::to_owned)),
            "sort_dir" => sort_dirs.extend(value.split(',').map(str::to_owned)),
            "sort" => sort = Some(value.clone()),
            "tag" => query.filters.push(ApiFilter::Tag(tag_from_api(value))),
            "member_status" => {
                query.member_status = match value.as_str() {
                    "all" => None,
                    other => Some(ShareStatus::from_member(other).ok_or_else(|| {
                        let mut named: Vec<&str> =
                            ShareStatus::MEMBER.iter().map(|s| s.as_str()).collect();
                        named.push("all");
                        bad(format!("member_status must be {}.", or_list(&named)))
                    })?),
                };
            }
            "size_min" | "size_max" => {
                let bound = value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("{key} must be a whole number of bytes.")))?;
                query.filters.push(if key == "size_min" {
                    ApiFilter::SizeMin(bound)
                } else {
                    ApiFilter::SizeMax(bound)
                });
            }
            "os_hidden" => {
                query.hidden = match value.as_str() {
                    "true" | "True" => Inclusion::Only,
                    "false" | "False" => Inclusion::Exclude,
                    _ => return Err(bad("os_hidden must be true or false.")),
                };
            }
            "deprecated" => {
                query.deprecated = match value.as_str() {
                    "true" | "only" => Inclusion::Only,
                    "false" => Inclusion::Exclude,
                    "include" | "any" => Inclusion::Include,
                    _ => return Err(bad("deprecated must be true, false or include.")),
                };
            }
            "visibility" => match value.as_str() {
                "all" => {}
                "private" | "shared" | "public" | "community" => query
                    .filters
                    .push(ApiFilter::Field(ApiField::Visibility, vec![value.clone()])),
                _ => {
                    return Err(bad(
                        "visibility must be private, shared, public, community or all.",
                    ));
                }
            },
            "tags" => return Err(bad("Filter on tags with tag=…, once for each tag.")),
            _ => {
                // `in:a,b` lists the values any of which match, as Glance's filters allow.
                let values: Vec<String> = match value.strip_prefix("in:") {
                    Some(list) => list.split(',').map(str::to_owned).collect(),
                    None => vec![value.clone()],
                };
                query.filters.push(match ApiField::from_key(key) {
                    Some(ApiField::OsDistro) => ApiFilter::Field(
                        ApiField::OsDistro,
                        values.iter().map(|v| os_type_value(v)).collect(),
                    ),
                    Some(field) => ApiFilter::Field(field, values),
                    // Any other key filters on a free-form property, as in Glance.
                    None => ApiFilter::Property(key.clone(), values),
                });
            }
        }
    }
    if let Some(sort) = sort {
        if !sort_keys.is_empty() || !sort_dirs.is_empty() {
            return Err(bad("Use either sort, or sort_key and sort_dir, not both."));
        }
        for item in sort.split(',').filter(|s| !s.is_empty()) {
            let (key, dir) = item.split_once(':').unwrap_or((item, "desc"));
            query.sort.push(ApiSort {
                key: sort_key(key)?,
                descending: direction(dir)?,
            });
        }
    } else {
        if sort_dirs.len() > 1 && sort_dirs.len() != sort_keys.len() {
            return Err(bad("Give one sort_dir, or one for each sort_key."));
        }
        for (i, key) in sort_keys.iter().enumerate() {
            let dir = sort_dirs
                .get(i)
                .or(sort_dirs.first())
                .map_or("desc", String::as_str);
            query.sort.push(ApiSort {
                key: sort_key(key)?,
                descending: direction(dir)?,
            });
        }
        if sort_keys.is_empty() && !sort_dirs.is_empty() {
            query.sort.push(ApiSort {
                key: ApiSortKey::CreatedAt,
                descending: direction(&sort_dirs[0])?,
            });
        }
    }
    if query.sort.is_empty() {
        query.sort.push(ApiSort {
            key: ApiSortKey::CreatedAt,
            descending: true,
        });
    }
    // Ties are broken by creation, then id, as in Glance, so pages never overlap.
    for tie in [ApiSortKey::CreatedAt, ApiSortKey::Id] {
        if !query.sort.iter().any(|s| s.key == tie) {
            query.sort.push(ApiSort {
                key: tie,
                descending: true,
            });
        }
    }
    Ok(query)
}

fn sort_key(raw: &str) -> Result<ApiSortKey, FieldRefusal> {
    ApiSortKey::parse(raw).ok_or_else(|| {
        let keys: Vec<&str> = ApiSortKey::ALL.iter().map(|k| k.as_str()).collect();
        bad(format!(
            "sort key '{raw}' is not one of {}.",
            keys.join(", ")
        ))
    })
}

fn direction(raw: &str) -> Result<bool, FieldRefusal> {
    match raw {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(bad(format!("sort direction '{raw}' must be asc or desc."))),
    }
}

/// The query of the next page: the same, with the last image as the marker.
pub fn next_query(pairs: &[(String, String)], last_id: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(k, _)| k != "marker") {
        query.append_pair(key, value);
    }
    query.append_pair("marker", last_id);
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sorting_parameters() {
        let keys = |q: ApiListQuery| -> Vec<(&'static str, bool)> {
            q.sort
                .iter()
                .map(|s| (s.key.as_str(), s.descending))
                .collect()
        };
        let p = parse(&pairs(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(
            keys(p),
            vec![
                ("name", false),
                ("size", true),
                ("created_at", true),
                ("id", true)
            ]
        );
        let p = parse(&pairs(&[
            ("sort_key", "name"),
            ("sort_key", "size"),
            ("sort_dir", "asc"),
        ]))
        .unwrap();
        assert_eq!(keys(p)[..2], [("name", false), ("size", false)]);
        assert!(parse(&pairs(&[("sort_key", "checksum")])).is_err());
        assert!(parse(&pairs(&[("sort", "name:up")])).is_err());
        assert!(parse(&pairs(&[("sort", "name"), ("sort_key", "id")])).is_err());
        assert_eq!(
            parse(&pairs(&[("limit", "5000")])).unwrap().limit,
            MAX_LIMIT
        );
        assert!(parse(&pairs(&[("limit", "-1")])).is_err());
        assert!(parse(&pairs(&[("member_status", "maybe")])).is_err());
        assert!(parse(&pairs(&[("tags", "x")])).is_err());
    }

    #[test]
    fn filters_name_fields_or_properties() {
        let q = parse(&pairs(&[
            ("os_distro", "in:Ubuntu,RockyLinux"),
            ("hw_disk_bus", "scsi"),
            ("tag", "env=prod"),
            ("visibility", "all"),
            ("member_status", "all"),
        ]))
        .unwrap();
        assert_eq!(
            q.filters,
            vec![
                ApiFilter::Field(ApiField::OsDistro, vec!["ubuntu".into(), "rocky".into()]),
                ApiFilter::Property("hw_disk_bus".into(), vec!["scsi".into()]),
                ApiFilter::Tag(tag_from_api("env=prod")),
            ]
        );
        assert_eq!(q.member_status, None);
    }

    #[test]
    fn next_query_keeps_the_filters() {
        let q = next_query(
            &pairs(&[("limit", "2"), ("marker", "a"), ("tag", "x y")]),
            "b",
        );
        assert_eq!(q, "limit=2&tag=x+y&marker=b");
    }
}
