//! Types and rules shared by the browser and the server: no IO, no Leptos, no SQL.
//!
//! Every form field has a newtype whose `parse` is the only way to build it, so the form in the
//! browser and the service on the server reject the same input with the same sentence.

pub mod account;
pub mod api_list;
pub mod api_token;
pub mod attributes;
pub mod checksum;
pub mod conversion;
pub mod deprecation;
pub mod history;
pub mod image;
pub mod image_properties;
pub mod image_spec;
pub mod keys;
pub mod lifecycle;
pub mod list_query;
pub mod navigation;
pub mod notices;
pub mod os_catalogue;
pub mod settings;
pub mod share;
pub mod signature;
pub mod tags;
pub mod units;
pub mod upload;
pub mod validation;
pub mod web_url;

pub use validation::{FieldError, FieldErrors};
