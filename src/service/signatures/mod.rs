//! Signed images: the account's signing certificates and the check of an image's signature.

pub mod verify;
