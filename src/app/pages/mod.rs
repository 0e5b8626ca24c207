pub mod auth;
pub mod images;
pub mod not_found;
pub mod shares;
