pub mod account_settings;
pub mod api_access;
pub mod auth;
pub mod certificates;
pub mod image_guide;
pub mod images;
pub mod keys;
pub mod not_found;
pub mod shares;

/// The page number in a URL's query (`?page=3`); 1 when absent or not a page number.
pub fn page_number(query: &leptos_router::params::ParamsMap) -> u32 {
    query
        .get("page")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}
