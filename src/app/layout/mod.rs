pub mod console_layout;
