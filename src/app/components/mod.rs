pub mod confirm_dialog;
pub mod error_notice;
pub mod form_field;
pub mod image_attribute_fields;
pub mod progress_bar;
pub mod status_badge;
pub mod upload_controls;
