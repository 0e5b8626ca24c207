//! Conversion on import. Once an image's bytes have been received, hashed, inspected and
//! stored, an image that asked for another format is Converting: its row names the file as
//! received. A conversion attempt runs under the image's import lease like an import (slots,
//! fencing, Cancel Import, takeover after a restart):
//!
//! 1. the file as received on local disk: on a file store the stored file itself (read-only);
//!    on object storage, or sealed, a copy streamed down (and opened) into scratch space;
//! 2. `qemu-img info` under prlimit must agree with the inspector: the same format, no
//!    backing or data file, a self-contained VMDK whose extents are the file itself;
//! 3. `qemu-img measure` gives the space the result needs, which must fit the scratch space,
//!    the size limit and the account's quota, or the conversion fails before it starts;
//! 4. `qemu-img convert -p`, its progress recorded, killed with its process group on cancel,
//!    on shutdown or past a timeout scaled to the disk's size;
//! 5. the result goes through `receive` like any body (hashed, sealed under a new data key if
//!    the image is encrypted, written to the blob store), is inspected again as the target
//!    format, and replaces the file as received in one transaction that keeps the latter's
//!    format, size and hashes as the image's source file.
//!
//! A failed conversion makes the image Failed with qemu-img's reason and keeps no bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use tokio::io::AsyncWriteExt;

use super::qemu_img::{self, Failure, QemuImg};
use super::transfer::{DataKeyFor, key_refusal};
use super::*;
use crate::domain::conversion::ConvertTo;
use crate::store::images::ConversionJob;

/// How conversion runs (`CONVERT_TO`, `SCRATCH_DIR`, `SCRATCH_MAX_BYTES`, `QEMU_IMG`).
#[derive(Clone, Debug)]
pub struct ConversionSettings {
    /// What an image that chose nothing becomes: Create Image's preselected choice and an
    /// image API import's default.
    pub default: ConvertTo,
    /// Local space for copies of received files and for qemu-img's output. One console
    /// process's own: a start removes whatever an earlier run left in it.
    pub scratch_dir: PathBuf,
    /// The most scratch space conversions may take at once (0: as much as the filesystem has
    /// free).
    pub scratch_max_bytes: u64,
    /// The qemu-img program.
    pub qemu_img: PathBuf,
}

impl ConversionSettings {
    pub fn new(scratch_dir: PathBuf) -> Self {
        Self {
            default: ConvertTo::Keep,
            scratch_dir,
            scratch_max_bytes: 0,
            qemu_img: PathBuf::from("qemu-img"),
        }
    }
}

/// A conversion may run this long at least, and a second longer for every 32 MiB of its
/// virtual disk: qemu-img converts hundreds of MiB a second, so only a stuck one reaches it.
const BASE_TIMEOUT: Duration = Duration::from_secs(120);
const TIMEOUT_BYTES_PER_SECOND: u64 = 32 << 20;

fn conversion_timeout(virtual_size: u64) -> Duration {
    BASE_TIMEOUT + Duration::from_secs(virtual_size / TIMEOUT_BYTES_PER_SECOND)
}

/// The scratch space of this process's conversions and how much of it they have taken.
pub(super) struct Scratch {
    settings: ConversionSettings,
    taken: AtomicU64,
    pub(super) qemu_img: QemuImg,
}

impl Scratch {
    pub(super) fn new(settings: ConversionSettings) -> Self {
        let qemu_img = QemuImg::new(&settings.qemu_img);
        Self {
            settings,
            taken: AtomicU64::new(0),
            qemu_img,
        }
    }

    pub(super) fn default_target(&self) -> ConvertTo {
        self.settings.default
    }

    /// Removes what an earlier run of this process left (its conversions ended with it).
    pub(super) fn sweep(&self) -> std::io::Result<()> {
        let dir = &self.settings.scratch_dir;
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Bytes free for a new conversion: the filesystem's free space, within the cap less what
    /// running conversions have taken.
    fn available(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.settings.scratch_dir).map_err(std::io::Error::from)?;
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let taken = self.taken.load(AtomicOrdering::SeqCst);
        Ok(match self.settings.scratch_max_bytes {
            0 => free,
            cap => free.min(cap.saturating_sub(taken)),
        })
    }
}

/// One attempt's scratch directory, removed (and its space given back) when it ends.
struct ScratchDir<'a> {
    scratch: &'a Scratch,
    path: PathBuf,
    taken: u64,
}

impl<'a> ScratchDir<'a> {
    fn create(scratch: &'a Scratch, image_id: &str) -> std::io::Result<Self> {
        let path = scratch
            .settings
            .scratch_dir
            .join(format!("{image_id}.{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&path)?;
        Ok(Self {
            scratch,
            path,
            taken: 0,
        })
    }

    /// Takes `bytes` more of the scratch space for this attempt, or says how much it needs
    /// in all and how much is free.
    fn take(&mut self, bytes: u64, what: &str) -> Result<(), Stop> {
        let available = self.scratch.available()?;
        if bytes > available {
            return Err(Stop::Failed(format!(
                "Converting needs {} of scratch space for {what}, and {} is free; the conversion did not start.",
                format_bytes(self.taken + bytes),
                format_bytes(available + self.taken),
            )));
        }
        self.scratch.taken.fetch_add(bytes, AtomicOrdering::SeqCst);
        self.taken += bytes;
        Ok(())
    }
}

impl Drop for ScratchDir<'_> {
    fn drop(&mut self) {
        self.scratch
            .taken
            .fetch_sub(self.taken, AtomicOrdering::SeqCst);
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a conversion's scratch space; the next start will");
        }
    }
}

impl Importer {
    /// How many qemu-img processes this console has started (tests count them).
    pub fn converter_processes_started(&self) -> u64 {
        self.inner.scratch.qemu_img.processes_started()
    }

    /// Removes what conversions of this process's earlier run left in its scratch space.
    /// Runs at start, before any conversion.
    pub fn sweep_scratch(&self) -> std::io::Result<()> {
        self.inner.scratch.sweep()
    }

    /// What an image that chose no format becomes (`CONVERT_TO`).
    pub fn default_conversion(&self) -> ConvertTo {
        self.inner.scratch.default_target()
    }

    /// Claims the image's conversion, if it is Converting, and runs it.
    pub(super) async fn convert_claimed(&self, attempt: &Attempt<'_>) {
        let store = &self.inner.store;
        match store
            .claim_conversion(
                attempt.account_id,
                attempt.image_id,
                &attempt.fence,
                now_ms(),
            )
            .await
        {
            Ok(Some(job)) => self.run_conversion(attempt, job).await,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not start conversion"),
        }
    }

    /// Converts a claimed image, then makes it Active with the converted bytes or Failed
    /// with none.
    async fn run_conversion(&self, attempt: &Attempt<'_>, job: ConversionJob) {
        let started = Instant::now();
        tracing::info!(
            from = job.source.disk_format.as_str(),
            to = job.target.as_str(),
            attempt = job.attempt,
            "conversion started"
        );
        let mut written = None;
        let outcome = match ScratchDir::create(&self.inner.scratch, attempt.image_id) {
            Ok(mut dir) => self.convert(attempt, &job, &mut dir, &mut written).await,
            Err(e) => Err(Stop::from(e)),
        };
        let stop = match outcome {
            Ok(size_bytes) => {
                tracing::info!(
                    size_bytes,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "conversion finished"
                );
                return;
            }
            Err(stop) => self.settle(attempt, stop).await,
        };
        self.discard(attempt, written.as_ref()).await;
        let reason = match stop {
            // Cancel Import has already made the image Failed; a shutdown leaves it
            // Converting for the next start.
            Stop::Cancelled => {
                tracing::info!("conversion cancelled");
                return;
            }
            Stop::TakenOver => return,
            Stop::Failed(reason) | Stop::TooLarge(reason) => reason,
            Stop::Idle(_) => "The conversion stopped making progress.".to_owned(),
            Stop::Internal(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "conversion failed on our side"
                );
                "The conversion stopped because of a storage error on the server. Try again later."
                    .to_owned()
            }
        };
        tracing::info!(%reason, "conversion failed");
        self.fail_conversion(attempt, &reason).await;
    }

    /// Marks the image Failed without the bytes it received, and removes them.
    pub(super) async fn fail_conversion(&self, attempt: &Attempt<'_>, reason: &str) {
        let failed = self
            .inner
            .store
            .fail_conversion(
                (attempt.account_id, attempt.image_id),
                &attempt.fence,
                reason,
                now_ms(),
            )
            .await;
        match failed {
            Ok(Some(Some(blob_key))) => {
                if let Err(e) = self.inner.blobs.remove_blob(&blob_key).await {
                    tracing::warn!(error = %e, "could not remove a failed conversion's bytes; left for the sweep");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not mark the conversion failed"),
        }
    }

    /// The conversion itself; returns the converted size.
    async fn convert(
        &self,
        attempt: &Attempt<'_>,
        job: &ConversionJob,
        dir: &mut ScratchDir<'_>,
        written: &mut Option<IncomingState>,
    ) -> Result<u64, Stop> {
        let qemu = &self.inner.scratch.qemu_img;
        let from = job.source.disk_format;
        let source = self.local_source(attempt, job, dir).await?;
        let info = qemu.info(&source, from).await.map_err(refused)?;
        check_info(&info, from, &source)?;
        let required = qemu
            .measure(&source, from, job.target)
            .await
            .map_err(refused)?;
        let limit = self.inner.limits.max_bytes;
        if required > limit {
            return Err(Stop::TooLarge(format!(
                "Converted to {}, the image would take up to {}, more than the {} an image may have.",
                job.target.label(),
                format_bytes(required),
                format_bytes(limit)
            )));
        }
        dir.take(required, &format!("the {} file", job.target.label()))?;
        self.reserve(attempt, required, required).await?;

        let output = dir.path.join(format!("converted.{}", job.target.as_str()));
        let prepared = Instant::now();
        let running = qemu
            .convert(&source, from, &output, job.target)
            .map_err(refused)?;
        self.follow(attempt, job, running).await?;
        let converted = Instant::now();

        let length = tokio::fs::metadata(&output).await?.len();
        let file = tokio::fs::File::open(&output).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
            .map(|piece| piece.map_err(|e| e.to_string()));
        let source = transfer::Source {
            total: Some(length),
            origin: "The converted file",
            idle: None,
        };
        let key = match job.encryption_key_id.as_deref() {
            Some(key_id) => DataKeyFor::Result(key_id),
            None => DataKeyFor::None,
        };
        let bytes = self
            .receive(
                attempt,
                Box::pin(body),
                source,
                &Claims::default(),
                key,
                written,
            )
            .await?;
        self.keep_converted(attempt, job, bytes).await?;
        tracing::info!(
            qemu_img_ms = (converted - prepared).as_millis() as u64,
            store_ms = converted.elapsed().as_millis() as u64,
            "converted bytes stored"
        );
        Ok(length)
    }

    /// The file as received, on local disk: the stored file itself on a file store (unless
    /// sealed), otherwise a copy in `dir`, opened with the image's data key.
    async fn local_source(
        &self,
        attempt: &Attempt<'_>,
        job: &ConversionJob,
        dir: &mut ScratchDir<'_>,
    ) -> Result<PathBuf, Stop> {
        let blobs = &self.inner.blobs;
        if job.data_key.is_none()
            && let Some(path) = blobs.blob_file(&job.blob_key)?
        {
            return Ok(path);
        }
        let size = job.source.size_bytes;
        dir.take(size, "a copy of the received file")?;
        let mut reader = blobs.open_blob(&job.blob_key).await?;
        if let Some(stored) = &job.data_key {
            let cipher = self
                .inner
                .keys
                .open_data_key(attempt.account_id, stored)
                .await
                .map_err(key_refusal)?
                .cipher();
            reader = reader.sealed(cipher, size);
        }
        let path = dir
            .path
            .join(format!("received.{}", job.source.disk_format.as_str()));
        let mut file = tokio::fs::File::create(&path).await?;
        let mut pieces = reader.range(0, size);
        loop {
            let piece = tokio::select! {
                piece = pieces.next() => piece,
                () = attempt.cancel.cancelled() => return Err(Stop::Cancelled),
                () = attempt.lost.cancelled() => return Err(Stop::TakenOver),
            };
            match piece {
                Some(piece) => file.write_all(&piece?).await?,
                None => break,
            }
        }
        file.flush().await?;
        Ok(path)
    }

    /// Follows a running convert to its end, recording its progress, and kills it (with its
    /// process group) when the attempt is cancelled, loses its lease or runs out of time.
    async fn follow(
        &self,
        attempt: &Attempt<'_>,
        job: &ConversionJob,
        running: qemu_img::Running,
    ) -> Result<(), Stop> {
        let total = job.virtual_size_bytes;
        // Hundredths of a percent, written by qemu-img's progress lines.
        let percent = std::sync::Arc::new(AtomicU64::new(0));
        let reported = std::sync::Arc::clone(&percent);
        let finished = running.finish(move |p| {
            reported.store((p * 100.0) as u64, AtomicOrdering::Relaxed);
        });
        tokio::pin!(finished);
        let timeout = conversion_timeout(total);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        let store = &self.inner.store;
        loop {
            tokio::select! {
                ended = &mut finished => return ended.map_err(refused),
                () = attempt.cancel.cancelled() => return Err(Stop::Cancelled),
                () = attempt.lost.cancelled() => return Err(Stop::TakenOver),
                () = &mut deadline => {
                    return Err(Stop::Failed(format!(
                        "qemu-img did not finish converting within {}, so it was stopped.",
                        crate::domain::units::describe_duration(timeout)
                    )));
                }
                _ = ticker.tick() => {
                    let hundredths = percent.load(AtomicOrdering::Relaxed).min(10_000);
                    let done = (u128::from(total) * u128::from(hundredths) / 10_000) as u64;
                    if !store
                        .record_import_progress(attempt.account_id, attempt.image_id, &attempt.fence, done, Some(total))
                        .await?
                    {
                        return Err(Stop::Cancelled);
                    }
                }
            }
        }
    }

    /// Inspects the converted bytes as the target format, commits them beside the file as
    /// received, and makes them the image's.
    async fn keep_converted(
        &self,
        attempt: &Attempt<'_>,
        job: &ConversionJob,
        bytes: Written,
    ) -> Result<(), Stop> {
        let (account_id, image_id) = (attempt.account_id, attempt.image_id);
        let blobs = &self.inner.blobs;
        let checked = self
            .check_written(attempt, &bytes, &Claims::default(), job.target)
            .await?
            .map_err(|reason| Stop::Failed(format!("The converted file was refused: {reason}")))?;
        let blob_key = blobs
            .commit_replacement(Incoming::Import, image_id, &bytes.state)
            .await?;
        let converted = checked.stored(blob_key.clone());
        let completed = self
            .inner
            .store
            .complete_conversion(
                (account_id, image_id),
                &attempt.fence,
                job,
                &converted,
                bytes.wrapped.as_ref(),
                now_ms(),
            )
            .await;
        match completed {
            Ok(Some(received)) => {
                if let Some(received) = received
                    && let Err(e) = blobs.remove_blob(&received).await
                {
                    tracing::warn!(error = %e, "could not remove the file as received; left for the sweep");
                }
                Ok(())
            }
            completed => {
                // This attempt's own key: nobody else names it.
                blobs.remove_blob(&blob_key).await?;
                completed?;
                Err(self.settle(attempt, Stop::Cancelled).await)
            }
        }
    }
}

/// qemu-img's refusal as the image's reason.
fn refused(failure: Failure) -> Stop {
    match failure {
        Failure::Refused(reason) => {
            Stop::Failed(format!("qemu-img could not convert the file: {reason}."))
        }
        Failure::TimedOut(after) => Stop::Failed(format!(
            "qemu-img did not answer within {}, so it was stopped.",
            crate::domain::units::describe_duration(after)
        )),
        Failure::Io(e) if e.kind() == std::io::ErrorKind::NotFound => Stop::Failed(
            "Conversion is not available on this console: qemu-img is not installed (QEMU_IMG). Create the image again with Convert to: Keep as uploaded.".into(),
        ),
        Failure::Io(e) => Stop::Internal(anyhow::Error::new(e).context("running qemu-img")),
    }
}

/// What qemu-img says of the file must agree with the inspector's verdict.
fn check_info(info: &qemu_img::Info, format: DiskFormat, path: &Path) -> Result<(), Stop> {
    let refuse = |why: String| {
        Err(Stop::Failed(format!(
            "The file was not converted: qemu-img {why}, which the console's inspection did not find."
        )))
    };
    if info.format != qemu_img::driver(format) {
        return refuse(format!(
            "reads it as {}, not {}",
            info.format,
            format.label()
        ));
    }
    if info.backing_file {
        return refuse("finds a backing file".into());
    }
    if info.data_file {
        return refuse("finds an external data file".into());
    }
    if format == DiskFormat::Vmdk {
        let create_type = info.create_type.as_deref().unwrap_or("none");
        if !crate::inspect::VMDK_SELF_CONTAINED.contains(&create_type) {
            return refuse(format!("finds the VMDK create type {create_type}"));
        }
        let own = path.to_string_lossy();
        if info.extents.iter().any(|e| e.as_str() != own) {
            return refuse("finds an extent in another file".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(format: &str) -> qemu_img::Info {
        qemu_img::Info {
            format: format.into(),
            virtual_size: 1 << 20,
            backing_file: false,
            data_file: false,
            create_type: Some("monolithicSparse".into()),
            extents: vec!["/s/received.vmdk".into()],
        }
    }

    #[test]
    fn qemu_img_must_agree_with_the_inspector() {
        let path = Path::new("/s/received.vmdk");
        assert!(check_info(&info("vmdk"), DiskFormat::Vmdk, path).is_ok());
        assert!(check_info(&info("vpc"), DiskFormat::Vhd, path).is_ok());
        assert!(check_info(&info("raw"), DiskFormat::Vmdk, path).is_err());
        let backing = qemu_img::Info {
            backing_file: true,
            ..info("qcow2")
        };
        assert!(check_info(&backing, DiskFormat::Qcow2, path).is_err());
        let data = qemu_img::Info {
            data_file: true,
            ..info("qcow2")
        };
        assert!(check_info(&data, DiskFormat::Qcow2, path).is_err());
        let flat = qemu_img::Info {
            create_type: Some("monolithicFlat".into()),
            ..info("vmdk")
        };
        assert!(check_info(&flat, DiskFormat::Vmdk, path).is_err());
        let outside = qemu_img::Info {
            extents: vec!["/etc/shadow".into()],
            ..info("vmdk")
        };
        assert!(check_info(&outside, DiskFormat::Vmdk, path).is_err());
    }

    #[test]
    fn the_timeout_grows_with_the_disk() {
        assert_eq!(conversion_timeout(0), BASE_TIMEOUT);
        assert_eq!(
            conversion_timeout(4 << 30),
            BASE_TIMEOUT + Duration::from_secs(128)
        );
    }
}
