//! The console's server: reads the configuration, prepares the stores and serves.

#[cfg(feature = "ssr")]
fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("rotate-master-key") {
        return match image_console::server::config::rotate_master_key_file() {
            Ok(done) => {
                println!("{done}");
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("image-console: {error:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    cap_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("image-console: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        image_console::server::telemetry::init();
        match image_console::server::run().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("{error:#}");
                eprintln!("image-console: {error:#}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// glibc gives a thread that allocates while another holds the lock an arena of its own, up to
/// eight per core, and keeps what is freed in each. Image bytes pass between threads in
/// 1–2 MiB buffers, so each arena came to hold some: four transfers at once peaked at
/// 136 MiB resident with the default, 95 MiB with two arenas, at the same speed. Runs
/// before any thread starts; `MALLOC_ARENA_MAX`, if set, decides instead.
#[cfg(feature = "ssr")]
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a parameter of the allocator; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser bundle starts from `hydrate()` in lib.rs.
}
