//! What the benchmarks share: a console process and its client, the servers bench/bytes
//! measures against, and the measures themselves. Each bench uses a part of it.
#![allow(dead_code)]

pub mod console;
pub mod measure;
pub mod servers;
