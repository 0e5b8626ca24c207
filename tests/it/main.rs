//! Integration tests: the service layer and the HTTP surface against real databases
//! (SQLite and PostgreSQL), real files and a real HTTP source.

mod support;

mod accounts;
mod http;
mod imports;
mod recovery;
mod scoping;
