//! Integration tests: the service layer and the HTTP surface against real databases
//! (SQLite and PostgreSQL), real files and a real HTTP source.

mod support;

mod abuse;
mod accounts;
mod api_limits;
mod api_list;
mod api_tokens;
mod blob_store;
mod bytes;
mod conversion;
pub(crate) mod crash;
mod details;
mod downloads;
mod encryption;
mod http;
mod image_api;
mod imports;
mod instances;
mod keys;
mod kms;
mod leases;
mod lifecycle;
mod limits;
mod listing;
mod matrix;
mod openstack_clients;
mod os_catalogue;
mod provenance;
mod recovery;
mod scoping;
mod shares;
mod signatures;
mod ssrf;
mod uploads;
